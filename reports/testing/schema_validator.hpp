#pragma once
// A small JSON Schema (draft-07) validator for the subset report.schema.json uses: type, required,
// properties, items, enum (plus the annotations $schema, $id, title, description). Any other
// keyword is reported as an error, so the schema cannot silently outgrow the validator. Test-only.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pa::report {

/// Every violation as "<json pointer>: <what>"; empty means valid.
std::vector<std::string> validate_schema(const nlohmann::json& schema, const nlohmann::json& doc);

}  // namespace pa::report
