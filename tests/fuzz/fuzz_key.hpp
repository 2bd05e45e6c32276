// The key pair the fuzzing seeds are signed with (ckpt_fuzz_seeds) and the fuzzers check
// signatures against, so a seed's signature verifies and every branch of the check is reached.
// Public on purpose: it signs nothing but fuzzing seeds.
#pragma once

namespace ckpt::fuzz {

inline constexpr const char* kSecretKey =
    "ckpt-ed25519-secret-key-v1\n"
    "0j6n7PTmRJ5PFZRy7bX+dFotWKX/W0/o+jRV6l9gjQi5jkR5gC/e+zZjKW76BEszQwsJashK/PyilQU88/COAQ==\n";
inline constexpr const char* kPublicKey =
    "ckpt-ed25519-public-key-v1\n"
    "uY5EeYAv3vs2Yylu+gRLM0MLCWrISvz8opUFPPPwjgE=\n";

}  // namespace ckpt::fuzz
