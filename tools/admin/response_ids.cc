#include "tools/admin/response_ids.h"

#include <google/protobuf/descriptor.h>

namespace octo::admin {

std::vector<std::string> IdsOf(const google::protobuf::Message& m) {
  const google::protobuf::Descriptor* d = m.GetDescriptor();
  const google::protobuf::Reflection* r = m.GetReflection();
  const google::protobuf::FieldDescriptor* id = d->FindFieldByName("id");
  if (id != nullptr && id->type() == google::protobuf::FieldDescriptor::TYPE_STRING && !id->is_repeated()) {
    return {r->GetString(m, id)};
  }
  std::vector<std::string> ids;
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    if (f->type() != google::protobuf::FieldDescriptor::TYPE_MESSAGE) continue;
    const google::protobuf::FieldDescriptor* inner = f->message_type()->FindFieldByName("id");
    if (inner == nullptr || inner->type() != google::protobuf::FieldDescriptor::TYPE_STRING) continue;
    const auto id_of = [&](const google::protobuf::Message& item) {
      ids.push_back(item.GetReflection()->GetString(item, inner));
    };
    if (f->is_repeated()) {
      for (int k = 0; k < r->FieldSize(m, f); ++k) id_of(r->GetRepeatedMessage(m, f, k));
    } else if (r->HasField(m, f)) {
      id_of(r->GetMessage(m, f));
    }
  }
  return ids;
}

}  // namespace octo::admin
