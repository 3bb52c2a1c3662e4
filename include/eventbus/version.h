/* eventbus/version.h - the version of eventbus, as macros (compile time).
 *
 * Public (installed beside eventbus.h, which includes it); the server and the
 * client share it. eb_version() in eventbus.h tells the version of the
 * libeventbus actually loaded at run time. Keep in step with meson.build's
 * project version (tests/lib/test_install.py checks they agree). */
#ifndef EVENTBUS_VERSION_H
#define EVENTBUS_VERSION_H

#define EB_VERSION_MAJOR 0
#define EB_VERSION_MINOR 1
#define EB_VERSION_PATCH 0
/* One number that grows with the version: 0xMMmmpp. */
#define EB_VERSION_HEX ((EB_VERSION_MAJOR << 16) | (EB_VERSION_MINOR << 8) | EB_VERSION_PATCH)

#endif /* EVENTBUS_VERSION_H */
