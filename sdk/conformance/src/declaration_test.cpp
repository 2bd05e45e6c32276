// What a format says about itself must be coherent, since the registry acts on it without
// loading the library: a manifest to find it by, extensions and magic to choose it by, and
// capability bits that make sense together.
#include "kit.hpp"

namespace ckpt::conformance {
namespace {

class Declaration : public FormatTest {};

TEST_P(Declaration, HasAManifestBesideTheLibrary) {
  EXPECT_FALSE(subject().plugin->manifest.empty())
      << "no " << subject().plugin->library.stem().string()
      << ".ckpt-plugin.json beside the library: the registry skips it (ckpt_add_format_plugin writes one)";
}

TEST_P(Declaration, NamesAndExtensionsAreWellFormed) {
  const std::string& n = info().name;
  EXPECT_FALSE(n.empty());
  for (char c : n)
    EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')
        << "format name '" << n << "' should be short, lower case ASCII";
  EXPECT_FALSE(info().long_name.empty());
  for (const auto& e : info().extensions)
    EXPECT_TRUE(e.size() > 1 && e[0] == '.') << "extension '" << e << "' should start with a dot";
  for (const auto& m : info().magic) EXPECT_FALSE(m.bytes.empty()) << "empty magic at offset " << m.offset;
}

TEST_P(Declaration, CapabilitiesAreCoherent) {
  const uint32_t known = CKPT_CAP_READ | CKPT_CAP_WRITE | CKPT_CAP_MAP | CKPT_CAP_ATTRIBUTES |
                         CKPT_CAP_NESTED_GROUPS | CKPT_CAP_ATTRIBUTE_ARRAYS | CKPT_CAP_LAZY_LIST |
                         CKPT_CAP_DETERMINISTIC | CKPT_CAP_PRIVATE_TREE;
  EXPECT_EQ(info().capabilities & ~known, 0u) << "unknown capability bits";
  EXPECT_EQ(info().dtypes & ~uint32_t{CKPT_DTYPES_ALL | CKPT_DTYPES_UNSIGNED | CKPT_DTYPES_FLOAT8 | CKPT_DTYPES_COMPLEX |
                                       CKPT_DTYPES_GGML_BLOCKS},
            0u)
      << "unknown dtype bits";
  EXPECT_TRUE(can(CKPT_CAP_READ) || can(CKPT_CAP_WRITE)) << "a format that neither reads nor writes";
  EXPECT_TRUE(!can(CKPT_CAP_WRITE) || info().dtypes != 0) << "writes, but holds no dtype";
  EXPECT_TRUE(!can(CKPT_CAP_MAP) || can(CKPT_CAP_READ)) << "'map' without 'read'";
  EXPECT_TRUE(!can(CKPT_CAP_LAZY_LIST) || can(CKPT_CAP_READ)) << "'lazy_list' without 'read'";
  EXPECT_TRUE(!can(CKPT_CAP_DETERMINISTIC) || can(CKPT_CAP_WRITE)) << "'deterministic' without 'write'";
  EXPECT_TRUE(!can(CKPT_CAP_PRIVATE_TREE) || (can(CKPT_CAP_WRITE) && can(CKPT_CAP_NESTED_GROUPS)))
      << "'private_tree' without 'write' and 'nested_groups' (what would it keep privately?)";
  EXPECT_TRUE(!can(CKPT_CAP_ATTRIBUTE_ARRAYS) || can(CKPT_CAP_ATTRIBUTES))
      << "'attribute_arrays' without 'attributes'";
}

INSTANTIATE_TEST_SUITE_P(Conformance, Declaration, ::testing::ValuesIn(subjects()), subject_param_name);

}  // namespace
}  // namespace ckpt::conformance

CKPT_CONFORMANCE_CASES(declaration)
