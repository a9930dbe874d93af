/*
 * A minimal stand-in for the Arduino APIs the FTTE board glue uses (firmware/ports/arduino,
 * esp32, nrf52840): declarations only, with the signatures of Arduino-ESP32 2.x and Adafruit's
 * nRF52 core. tests/test_arduino_glue.py compiles the glue against it to prove the glue compiles
 * against the firmware core's port interface and to catch drift. It is NOT a build for a board:
 * the real cores are not here (PlatformIO's registry is unreachable), and nothing is linked.
 * Select the board with -DFTTE_MOCK_ESP32 or -DFTTE_MOCK_NRF52840.
 */
#ifndef FTTE_ARDUINO_MOCK_H
#define FTTE_ARDUINO_MOCK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

unsigned long millis(void);
void delay(unsigned long ms);
void yield(void);

/* Stream / Print as far as the glue uses them. */
class Stream {
  public:
    virtual int available(void);
    virtual int read(void);
    virtual size_t write(uint8_t c);
    virtual size_t write(const uint8_t *buf, size_t size);
    virtual void flush(void);
    virtual ~Stream() {}
};

#if defined(FTTE_MOCK_ESP32)
class HardwareSerial : public Stream {
  public:
    void begin(unsigned long baud);
    size_t setRxBufferSize(size_t new_size);
    operator bool() const;
};
extern HardwareSerial Serial;

class EspClass {
  public:
    uint64_t getEfuseMac(void);
    uint32_t getFlashChipSize(void);
};
extern EspClass ESP;
uint32_t getCpuFrequencyMhz(void);

#elif defined(FTTE_MOCK_NRF52840)
class Adafruit_USBD_CDC : public Stream {
  public:
    void begin(uint32_t baud);
    operator bool();
};
extern Adafruit_USBD_CDC Serial;

typedef struct {
    volatile const uint32_t DEVICEID[2];
} NRF_FICR_Type;
#define NRF_FICR ((const NRF_FICR_Type *)0x10000060u)
#define F_CPU 64000000L

#else
#error "define FTTE_MOCK_ESP32 or FTTE_MOCK_NRF52840"
#endif

#endif /* FTTE_ARDUINO_MOCK_H */
