/* SPDX-License-Identifier: GPL-2.0-only */
/* The version every program of the project reports (--version). */
#ifndef CGF_VERSION_H
#define CGF_VERSION_H

#ifndef CGF_VERSION
#define CGF_VERSION "2.0"
#endif

#endif /* CGF_VERSION_H */
