/* Stand-in for Adafruit nRF52 core's InternalFileSystem.h (declarations only; see Arduino.h here). */
#ifndef FTTE_MOCK_INTERNAL_FILE_SYSTEM_H
#define FTTE_MOCK_INTERNAL_FILE_SYSTEM_H

#include "Adafruit_LittleFS.h"

class InternalFileSystem : public Adafruit_LittleFS {
  public:
    bool begin(void);
};

extern InternalFileSystem InternalFS;

#endif
