/* Stand-in for Arduino-ESP32's LittleFS.h (declarations only; see Arduino.h here). */
#ifndef FTTE_MOCK_LITTLEFS_H
#define FTTE_MOCK_LITTLEFS_H

#include "FS.h"

namespace fs {
class LittleFSFS : public FS {
  public:
    bool begin(bool formatOnFail = false, const char *basePath = "/littlefs", uint8_t maxOpenFiles = 10,
               const char *partitionLabel = "spiffs");
    bool format(void);
    void end(void);
};
}  // namespace fs

extern fs::LittleFSFS LittleFS;

#endif
