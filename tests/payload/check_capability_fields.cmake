# ctest payload_capability_fields_up_to_date: regenerates the capability table
# and fails when it differs from the committed one. Fails (never skips) when
# the reference document cannot be found.
set(reference ${DEFAULT_REFERENCE})
if(NOT EXISTS ${reference})
  if(DEFINED ENV{OCTO_REFERENCE_DIR})
    set(reference $ENV{OCTO_REFERENCE_DIR}/ventrata-octo-openapi.yaml)
  endif()
endif()
if(NOT EXISTS ${reference})
  message(FATAL_ERROR "ventrata-octo-openapi.yaml not found at ${DEFAULT_REFERENCE}; set OCTO_REFERENCE_DIR")
endif()
execute_process(
  COMMAND ${PYTHON} ${SCRIPT} ${reference}
  OUTPUT_FILE ${OUTPUT}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${SCRIPT} ${reference} failed: ${rc}")
endif()
file(READ ${OUTPUT} generated)
file(READ ${COMMITTED} committed)
if(NOT generated STREQUAL committed)
  message(FATAL_ERROR "${COMMITTED} is out of date: regenerate it with\n"
                      "  ${SCRIPT} ${reference} > ${COMMITTED}\n(generated: ${OUTPUT})")
endif()
message(STATUS "capability_fields.json matches ${reference}")
