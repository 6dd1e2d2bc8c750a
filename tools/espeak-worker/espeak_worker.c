// SPDX-License-Identifier: GPL-3.0-or-later
/*
 * espeak-worker: a tiny stand-alone program that serves espeak-ng speech synthesis over
 * stdin/stdout. It links libespeak-ng (GPL-3.0-or-later) and is therefore itself
 * licensed GPL-3.0-or-later. Adam (Apache-2.0) never links it: it only starts this
 * program as a separate process and talks to it over pipes.
 *
 * Copyright (C) the Adam authors.
 *
 * This program is free software: you can redistribute it and/or modify it under the
 * terms of the GNU General Public License as published by the Free Software Foundation,
 * either version 3 of the License, or (at your option) any later version.
 *
 * This program is distributed in the hope that it will be useful, but WITHOUT ANY
 * WARRANTY; without even the implied warranty of MERCHANTABILITY or FITNESS FOR A
 * PARTICULAR PURPOSE. See the GNU General Public License for more details.
 *
 * You should have received a copy of the GNU General Public License along with this
 * program. If not, see <https://www.gnu.org/licenses/>.
 *
 * Usage: espeak-worker [VOICE]   (VOICE, e.g. en-us, is loaded at start-up so that the
 * first request is as fast as the others.)
 *
 * Protocol (version 1). All integers are little-endian.
 *
 * Requests (stdin), one after another:
 *   'S' u32 rate_wpm, u32 voice_len, u32 text_len, voice bytes, text bytes (UTF-8)
 *         Synthesize text with that voice and rate. The text is raw (no SSML, no
 *         [[phonemes]]); any bytes are fine, NUL bytes are read as spaces.
 *   'C'   Cancel the request being synthesized. Outside a synthesis it is ignored, so
 *         a late cancel is harmless.
 *   EOF   Exit.
 *
 * Replies (stdout) are frames: u8 type, u32 payload_len, payload.
 *   'H' u32 protocol_version, u32 sample_rate, espeak-ng version (UTF-8)
 *         Sent once at start-up when the synthesizer is ready.
 *   'A' PCM16 LE mono samples at sample_rate.
 *   'W' u32 text_position, u32 length, u32 audio_ms
 *         A word starts. text_position counts characters from 1, length in characters.
 *   'P' u32 audio_ms, u32 text_position, phoneme mnemonic (1-8 bytes UTF-8)
 *         A phoneme starts (espeak-ng mnemonic; "_" etc. are pauses).
 *   'E' i32 status, u32 total_samples, message (UTF-8)
 *         End of the request: 0 ok, 1 cancelled, 2 unknown voice, 3 synthesis failed,
 *         4 bad request (text too long).
 * stdout is flushed after each batch the synthesizer produces, so audio streams.
 */

#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <espeak-ng/speak_lib.h>

#define PROTOCOL_VERSION 1u
#define MAX_VOICE 256u
#define MAX_TEXT (1u << 20)
#define BUFFER_MS 50

enum {
    STATUS_OK = 0,
    STATUS_CANCELLED = 1,
    STATUS_BAD_VOICE = 2,
    STATUS_SYNTH_FAILED = 3,
    STATUS_BAD_REQUEST = 4,
};

static uint64_t samples_out;
static int cancel_requested;
static int stdin_closed;
static int output_failed;
static int protocol_error;

static void put_u32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)((v >> 8) & 0xff);
    p[2] = (unsigned char)((v >> 16) & 0xff);
    p[3] = (unsigned char)((v >> 24) & 0xff);
}

static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static void write_bytes(const void *buf, size_t n) {
    if (output_failed || n == 0)
        return;
    if (fwrite(buf, 1, n, stdout) != n)
        output_failed = 1;
}

static void frame_header(char type, uint32_t len) {
    unsigned char h[5];
    h[0] = (unsigned char)type;
    put_u32(h + 1, len);
    write_bytes(h, sizeof h);
}

static void flush_out(void) {
    if (!output_failed && fflush(stdout) != 0)
        output_failed = 1;
}

static uint32_t clamp_pos(int v) {
    return v < 0 ? 0u : (uint32_t)v;
}

/* Reads exactly n bytes from stdin (raw fd, no stdio buffering, so that the callback's
 * poll() for cancel bytes sees everything). Returns 0, or -1 on EOF/error. */
static int read_exact(void *buf, size_t n) {
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = read(STDIN_FILENO, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static int discard(size_t n) {
    unsigned char buf[4096];
    while (n > 0) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        if (read_exact(buf, k) != 0)
            return -1;
        n -= k;
    }
    return 0;
}

/* Non-blocking check for cancel bytes while synthesizing. */
static void poll_cancel(void) {
    for (;;) {
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN, .revents = 0};
        int r = poll(&pfd, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || !(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
            return;
        unsigned char buf[64];
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            stdin_closed = 1;
            cancel_requested = 1;
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == 'C')
                cancel_requested = 1;
            else
                protocol_error = 1;
        }
        if (protocol_error)
            cancel_requested = 1;
    }
}

static int synth_callback(short *wav, int numsamples, espeak_EVENT *events) {
    for (espeak_EVENT *e = events; e != NULL && e->type != espeakEVENT_LIST_TERMINATED; e++) {
        unsigned char p[16];
        if (e->type == espeakEVENT_WORD) {
            put_u32(p, clamp_pos(e->text_position));
            put_u32(p + 4, clamp_pos(e->length));
            put_u32(p + 8, clamp_pos(e->audio_position));
            frame_header('W', 12);
            write_bytes(p, 12);
        } else if (e->type == espeakEVENT_PHONEME) {
            size_t len = strnlen(e->id.string, sizeof e->id.string);
            put_u32(p, clamp_pos(e->audio_position));
            put_u32(p + 4, clamp_pos(e->text_position));
            frame_header('P', (uint32_t)(8 + len));
            write_bytes(p, 8);
            write_bytes(e->id.string, len);
        }
    }
    if (wav != NULL && numsamples > 0) {
        unsigned char buf[4096];
        frame_header('A', (uint32_t)numsamples * 2u);
        int i = 0;
        while (i < numsamples) {
            size_t k = 0;
            for (; i < numsamples && k + 2 <= sizeof buf; i++) {
                uint16_t s = (uint16_t)wav[i];
                buf[k++] = (unsigned char)(s & 0xff);
                buf[k++] = (unsigned char)(s >> 8);
            }
            write_bytes(buf, k);
        }
        samples_out += (uint64_t)numsamples;
    }
    flush_out();
    poll_cancel();
    return (cancel_requested || output_failed) ? 1 : 0;
}

static void end_frame(int32_t status, const char *message) {
    size_t len = message ? strlen(message) : 0;
    unsigned char p[8];
    put_u32(p, (uint32_t)status);
    put_u32(p + 4, samples_out > UINT32_MAX ? UINT32_MAX : (uint32_t)samples_out);
    frame_header('E', (uint32_t)(8 + len));
    write_bytes(p, 8);
    write_bytes(message, len);
    flush_out();
}

static int serve_synth(char *current_voice) {
    unsigned char h[12];
    if (read_exact(h, sizeof h) != 0)
        return -1;
    uint32_t rate = get_u32(h), voice_len = get_u32(h + 4), text_len = get_u32(h + 8);
    samples_out = 0;
    cancel_requested = 0;
    if (voice_len > MAX_VOICE || text_len > MAX_TEXT) {
        if (discard((size_t)voice_len) != 0 || discard((size_t)text_len) != 0)
            return -1;
        end_frame(STATUS_BAD_REQUEST, "voice name or text too long");
        return 0;
    }
    char voice[MAX_VOICE + 1];
    char *text = malloc((size_t)text_len + 1);
    if (text == NULL) {
        fprintf(stderr, "espeak-worker: out of memory\n");
        return -1;
    }
    if (read_exact(voice, voice_len) != 0 || read_exact(text, text_len) != 0) {
        free(text);
        return -1;
    }
    voice[voice_len] = '\0';
    for (uint32_t i = 0; i < text_len; i++)
        if (text[i] == '\0')
            text[i] = ' ';
    text[text_len] = '\0';

    if (voice_len == 0 || strlen(voice) != voice_len) {
        end_frame(STATUS_BAD_VOICE, "empty or invalid voice name");
        free(text);
        return 0;
    }
    if (strcmp(voice, current_voice) != 0) {
        if (espeak_SetVoiceByName(voice) != EE_OK) {
            current_voice[0] = '\0';
            end_frame(STATUS_BAD_VOICE, "unknown voice");
            free(text);
            return 0;
        }
        memcpy(current_voice, voice, (size_t)voice_len + 1);
    }
    if (rate < espeakRATE_MINIMUM)
        rate = espeakRATE_MINIMUM;
    if (rate > espeakRATE_MAXIMUM)
        rate = espeakRATE_MAXIMUM;
    espeak_SetParameter(espeakRATE, (int)rate, 0);

    espeak_ERROR err = espeak_Synth(text, (size_t)text_len + 1, 0, POS_CHARACTER, 0,
                                    espeakCHARS_UTF8 | espeakENDPAUSE, NULL, NULL);
    free(text);
    if (cancel_requested)
        end_frame(STATUS_CANCELLED, "cancelled");
    else if (err != EE_OK)
        end_frame(STATUS_SYNTH_FAILED, "espeak_Synth failed");
    else
        end_frame(STATUS_OK, "");
    if (output_failed || stdin_closed || protocol_error)
        return -1;
    return 0;
}

int main(int argc, char **argv) {
    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);

    int rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, BUFFER_MS, NULL,
                                 espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT);
    if (rate <= 0) {
        fprintf(stderr, "espeak-worker: espeak_Initialize failed\n");
        return 1;
    }
    espeak_SetSynthCallback(synth_callback);
    char current_voice[MAX_VOICE + 1] = "";
    if (argc > 1 && strlen(argv[1]) <= MAX_VOICE) {
        if (espeak_SetVoiceByName(argv[1]) == EE_OK)
            strcpy(current_voice, argv[1]);
        else
            fprintf(stderr, "espeak-worker: unknown voice %s\n", argv[1]);
    }

    const char *version = espeak_Info(NULL);
    size_t vlen = version ? strlen(version) : 0;
    unsigned char hello[8];
    put_u32(hello, PROTOCOL_VERSION);
    put_u32(hello + 4, (uint32_t)rate);
    frame_header('H', (uint32_t)(8 + vlen));
    write_bytes(hello, 8);
    write_bytes(version, vlen);
    flush_out();
    if (output_failed)
        return 1;

    for (;;) {
        unsigned char op;
        if (read_exact(&op, 1) != 0)
            break;
        if (op == 'C')
            continue;
        if (op != 'S') {
            fprintf(stderr, "espeak-worker: unknown request byte 0x%02x\n", op);
            espeak_Terminate();
            return 2;
        }
        if (serve_synth(current_voice) != 0)
            break;
    }
    espeak_Terminate();
    return 0;
}
