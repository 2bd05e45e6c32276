// ckpt-conformance: see ckpt/conformance.hpp.
#include <ckpt/conformance.hpp>

int main(int argc, char** argv) { return ckpt::conformance::run(argc, argv); }
