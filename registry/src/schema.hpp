// The registry's tables and their migrations (docs/registry.md, "Data model"). A registry
// records its schema version in schema_version; opening an older one applies the missing
// migrations in one transaction, a newer one is refused.
#pragma once

#include "database.hpp"

namespace ckpt::model_registry::detail {

enum class OpenMode { existing, create };

// Checks that `db` holds a registry (or, with OpenMode::create, is empty and becomes one) and
// migrates it to `target` (kSchemaVersion; tests name an older one to build old registries).
// Returns the version found before migrating (0 for a new registry).
int64_t prepare_schema(Database& db, OpenMode mode, int64_t target);

}  // namespace ckpt::model_registry::detail
