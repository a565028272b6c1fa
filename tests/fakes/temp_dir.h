// A fresh directory for one test (mkdtemp under the system's temp dir), removed with everything
// in it when the object goes: SQLite stores, config files, a redis-server's working dir.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace trl::testing {

class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "trl-test-") {
    std::string templ =
        (std::filesystem::temp_directory_path() / (std::string(prefix) + "XXXXXX")).string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp " + templ);
    path_ = std::move(templ);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  // The path of `name` inside it (nothing is created).
  std::string Path(std::string_view name) const { return path_ + "/" + std::string(name); }

  // Writes `content` to the file `name` inside it; returns the file's path.
  std::string Write(std::string_view name, std::string_view content) const {
    std::string file = Path(name);
    std::ofstream(file, std::ios::binary) << content;
    return file;
  }

 private:
  std::string path_;
};

}  // namespace trl::testing
