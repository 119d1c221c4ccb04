# The dispatcher's sources (owned by the dispatcher; included by
# services/delivery/CMakeLists.txt and tests/dispatch/CMakeLists.txt).
#
#   include(${PROJECT_SOURCE_DIR}/services/delivery/dispatch_sources.cmake)
#   target_sources(<library> PRIVATE ${OCTO_DISPATCH_SOURCES})
#   target_link_libraries(<library> PUBLIC ${OCTO_DISPATCH_LIBS})
#
# Public headers: dispatcher.h (Dispatcher, DispatcherOptions,
# DispatcherParts), retry_policy.h, dispatch_outcome.h, dispatch_store.h,
# dispatch_render.h, and the parts of the walk claim -> admit -> render ->
# sign -> send -> record: claim_loop.h, destination_admission.h,
# http_transport.h (curl_transport.h), result_recorder.h,
# notification_source.h, delivery_pipeline.h, handoff.h (handoff_queue.h).
if(NOT TARGET CURL::libcurl)
  find_package(CURL REQUIRED)
endif()

set(OCTO_DISPATCH_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/claim_loop.cc
  ${CMAKE_CURRENT_LIST_DIR}/curl_transfer.cc
  ${CMAKE_CURRENT_LIST_DIR}/curl_transport.cc
  ${CMAKE_CURRENT_LIST_DIR}/curl_url_and_errors.cc
  ${CMAKE_CURRENT_LIST_DIR}/delivery_pipeline.cc
  ${CMAKE_CURRENT_LIST_DIR}/destination_admission.cc
  ${CMAKE_CURRENT_LIST_DIR}/destination_pace.cc
  ${CMAKE_CURRENT_LIST_DIR}/dispatch_listener.cc
  ${CMAKE_CURRENT_LIST_DIR}/dispatch_outcome.cc
  ${CMAKE_CURRENT_LIST_DIR}/dispatch_render.cc
  ${CMAKE_CURRENT_LIST_DIR}/dispatch_store.cc
  ${CMAKE_CURRENT_LIST_DIR}/dispatch_store_params.cc
  ${CMAKE_CURRENT_LIST_DIR}/dispatch_store_webhooks.cc
  ${CMAKE_CURRENT_LIST_DIR}/dispatcher.cc
  ${CMAKE_CURRENT_LIST_DIR}/handoff_queue.cc
  ${CMAKE_CURRENT_LIST_DIR}/pg_notification_source.cc
  ${CMAKE_CURRENT_LIST_DIR}/result_recorder.cc
  ${CMAKE_CURRENT_LIST_DIR}/retry_policy.cc
  ${CMAKE_CURRENT_LIST_DIR}/send_fault.cc)

set(OCTO_DISPATCH_LIBS
  octo_payload
  octo_common
  CURL::libcurl
  PkgConfig::PQXX
  Boost::json
  absl::random_random absl::random_distributions absl::random_bit_gen_ref
  absl::status absl::statusor absl::strings absl::synchronization absl::time
  Threads::Threads)
