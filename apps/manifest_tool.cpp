// ckpt-manifest LIBRARY OUTPUT: writes the manifest of a plugin library, derived from the
// library's own descriptor so the two cannot disagree.
#include <ckpt/errors.hpp>
#include <ckpt/registry.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: ckpt-manifest LIBRARY OUTPUT\n";
    return 2;
  }
  try {
    std::string text = ckpt::manifest_for_library(std::filesystem::absolute(argv[1]));
    std::string tmp = std::string(argv[2]) + ".tmp";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, argv[2]);
  } catch (const std::exception& e) {
    std::cerr << "ckpt-manifest: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
