/*
 * A smart speaker's firmware deciding offline with consentry_device.
 *
 * It fetches nothing itself: it is handed the server's JWKS and the device's signed consent snapshot
 * (what the firmware would have from GET /.well-known/jwks.json and GET /v1/device/consent, or from its
 * MQTT topic), verifies the snapshot, optionally takes a newer one in its place, and then answers one
 * question per line of standard input:
 *
 *     purpose category channel recipient        ("-" for no channel or no recipient)
 *
 * printing, for each, the question and the decision:
 *
 *     analytics user.device.telemetry on_device - -> allowed granted evt_3
 *
 * Usage: speaker JWKS_FILE SNAPSHOT_FILE DEVICE_ID [NEWER_SNAPSHOT_FILE] < questions
 * Exit status: 0 when every question was answered, 1 on a refused snapshot or a failed check, 2 on usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consentry_device.h"

/* The whole file as a NUL-terminated string, or NULL. */
static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    size_t size = 0, cap = 4096;
    char *text = malloc(cap);
    while (text != NULL) {
        size += fread(text + size, 1, cap - size - 1, f);
        if (size < cap - 1) {
            break;
        }
        cap *= 2;
        char *bigger = realloc(text, cap);
        if (bigger == NULL) {
            free(text);
        }
        text = bigger;
    }
    if (text != NULL) {
        text[size] = '\0';
    }
    fclose(f);
    return text;
}

/* Loads and verifies a snapshot file; NULL (with a message) when refused. */
static consentry_snapshot *load(const char *jwks, const char *path, const char *device_id) {
    char *jws = read_file(path);
    if (jws == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        return NULL;
    }
    consentry_snapshot *snapshot = NULL;
    consentry_error err = consentry_snapshot_load(jwks, jws, device_id, (int64_t)time(NULL), &snapshot);
    free(jws);
    if (err != CONSENTRY_ERROR_OK) {
        fprintf(stderr, "snapshot %s refused (%d): %s\n", path, (int)err, consentry_last_error());
        return NULL;
    }
    return snapshot;
}

static const char *or_null(const char *word) {
    return strcmp(word, "-") == 0 ? NULL : word;
}

int main(int argc, char **argv) {
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: %s JWKS_FILE SNAPSHOT_FILE DEVICE_ID [NEWER_SNAPSHOT_FILE] < questions\n", argv[0]);
        return 2;
    }
    char *jwks = read_file(argv[1]);
    if (jwks == NULL) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 1;
    }
    consentry_snapshot *held = load(jwks, argv[2], argv[3]);
    if (held != NULL && argc == 5) {
        consentry_snapshot *newer = load(jwks, argv[4], argv[3]);
        /* Takes `newer` in any case; an older one is refused and the held one stays. */
        if (newer != NULL && consentry_snapshot_replace(held, newer) != CONSENTRY_ERROR_OK) {
            fprintf(stderr, "kept the held snapshot: %s\n", consentry_last_error());
        }
    }
    free(jwks);
    if (held == NULL) {
        return 1;
    }

    int status = 0;
    char line[512], purpose[128], category[128], channel[128], recipient[128];
    while (fgets(line, sizeof line, stdin) != NULL) {
        if (sscanf(line, "%127s %127s %127s %127s", purpose, category, channel, recipient) != 4) {
            continue;
        }
        consentry_decision d;
        consentry_error err = consentry_check(held, purpose, category, or_null(channel), or_null(recipient), &d);
        if (err != CONSENTRY_ERROR_OK) {
            fprintf(stderr, "check failed (%d): %s\n", (int)err, consentry_last_error());
            status = 1;
            break;
        }
        printf("%s %s %s %s -> %s %s", purpose, category, channel, recipient, d.allowed ? "allowed" : "denied",
               consentry_reason_name(d.reason));
        if (d.not_covered != CONSENTRY_DIMENSION_NONE) {
            printf(" %s", consentry_dimension_name(d.not_covered));
        }
        if (d.event_seq != 0) {
            printf(" evt_%llu", (unsigned long long)d.event_seq);
        }
        printf("\n");
    }
    consentry_snapshot_free(held);
    return status;
}
