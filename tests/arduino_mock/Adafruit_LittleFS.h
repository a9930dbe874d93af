/* Stand-in for Adafruit nRF52 core's Adafruit_LittleFS.h (declarations only; see Arduino.h here). */
#ifndef FTTE_MOCK_ADAFRUIT_LITTLEFS_H
#define FTTE_MOCK_ADAFRUIT_LITTLEFS_H

#include "Arduino.h"

class Adafruit_LittleFS;

namespace Adafruit_LittleFS_Namespace {

enum { FILE_O_READ = 0, FILE_O_WRITE = 1 };

class File : public Stream {
  public:
    explicit File(Adafruit_LittleFS &fs);
    bool open(char const *filename, uint8_t mode);
    size_t write(uint8_t ch) override;
    size_t write(uint8_t const *buf, size_t size) override;
    int read(void) override;
    int read(void *buf, uint16_t nbyte);
    bool seek(uint32_t pos);
    uint32_t size(void);
    void close(void);
    operator bool(void);
};

}  // namespace Adafruit_LittleFS_Namespace

class Adafruit_LittleFS {
  public:
    bool begin(void);
    Adafruit_LittleFS_Namespace::File open(char const *filename,
                                           uint8_t mode = Adafruit_LittleFS_Namespace::FILE_O_READ);
    bool exists(char const *filepath);
    bool remove(char const *filepath);
    bool format(void);
};

#endif
