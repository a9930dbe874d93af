/* Stand-in for Arduino-ESP32's FS.h (declarations only; see Arduino.h here). */
#ifndef FTTE_MOCK_FS_H
#define FTTE_MOCK_FS_H

#include "Arduino.h"

namespace fs {

enum SeekMode { SeekSet = 0, SeekCur = 1, SeekEnd = 2 };

class File : public Stream {
  public:
    size_t write(uint8_t c) override;
    size_t write(const uint8_t *buf, size_t size) override;
    size_t read(uint8_t *buf, size_t size);
    int read(void) override;
    bool seek(uint32_t pos, SeekMode mode = SeekSet);
    size_t size(void) const;
    void close(void);
    operator bool() const;
};

class FS {
  public:
    File open(const char *path, const char *mode = "r", const bool create = false);
    bool exists(const char *path);
    bool remove(const char *path);
    bool rename(const char *path_from, const char *path_to);
};

}  // namespace fs

using fs::File;
using fs::FS;

#endif
