/* A real TensorFlow Lite external-delegate plugin, written for edgefleet's
 * tests: tflite_plugin_create_delegate returns the XNNPACK delegate of the
 * libtensorflowlite_c the process has loaded (the backend dlopens it with
 * RTLD_GLOBAL), created with the options passed through --delegate-option;
 * tflite_plugin_destroy_delegate deletes it. It is how a vendor delegate
 * such as libedgetpu.so.1 is shipped, with XNNPACK in place of the
 * accelerator, so the loader runs real inference through a real plugin.
 *
 * Options understood:
 *   num_threads=N    XNNPACK threads (a thread pool when N > 1)
 *   quantized=true   also run 8-bit quantized operators (flags QS8|QU8)
 *   report=PATH      write what was created ("num_threads=N flags=F
 *                    threadpool=yes|no") to PATH
 *   fail=MSG         report MSG and return NULL (a plugin that fails)
 * Unknown options are an error reported through report_error.
 *
 * TfLiteXNNPackDelegateOptions grew over TensorFlow Lite versions; its
 * leading fields are int32 num_threads and uint32 flags (2.7 and later),
 * and every later field's zero value is valid (NULL weights cache, ...), so
 * the plugin starts from an all-zero buffer larger than any version's
 * struct instead of calling TfLiteXNNPackDelegateOptionsDefault (whose
 * return convention depends on the version's struct size). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int32_t num_threads; uint32_t flags; char rest[1016]; } xnn_options;
typedef void* (*xnn_create_fn)(const xnn_options*);
typedef void (*xnn_delete_fn)(void*);
typedef void* (*xnn_threadpool_fn)(void*);

void* tflite_plugin_create_delegate(char** keys, char** values, size_t n, void (*report_error)(const char*)) {
	xnn_options o;
	memset(&o, 0, sizeof o);
	const char* report = NULL;
	char msg[512];
	for (size_t i = 0; i < n; i++) {
		if (strcmp(keys[i], "num_threads") == 0) {
			char* end = NULL;
			long v = strtol(values[i], &end, 10);
			if (end == values[i] || *end != 0 || v < 0 || v > 1024) {
				snprintf(msg, sizeof msg, "num_threads=%s: want a number 0-1024", values[i]);
				report_error(msg);
				return NULL;
			}
			o.num_threads = (int32_t)v > 1 ? (int32_t)v : 0;
		} else if (strcmp(keys[i], "quantized") == 0) {
			if (strcmp(values[i], "true") == 0) o.flags |= 3;
		} else if (strcmp(keys[i], "report") == 0) {
			report = values[i];
		} else if (strcmp(keys[i], "fail") == 0) {
			report_error(values[i]);
			return NULL;
		} else {
			snprintf(msg, sizeof msg, "unknown option %s (want num_threads, quantized, report, fail)", keys[i]);
			report_error(msg);
			return NULL;
		}
	}
	xnn_create_fn create = (xnn_create_fn)dlsym(RTLD_DEFAULT, "TfLiteXNNPackDelegateCreate");
	xnn_threadpool_fn pool = (xnn_threadpool_fn)dlsym(RTLD_DEFAULT, "TfLiteXNNPackDelegateGetThreadPool");
	if (create == NULL) {
		report_error("TfLiteXNNPackDelegateCreate not found: load a libtensorflowlite_c with XNNPACK first");
		return NULL;
	}
	void* d = create(&o);
	if (d == NULL) {
		report_error("TfLiteXNNPackDelegateCreate returned NULL");
		return NULL;
	}
	if (report != NULL) {
		FILE* f = fopen(report, "w");
		if (f != NULL) {
			fprintf(f, "num_threads=%d flags=%u threadpool=%s", o.num_threads, o.flags,
				pool != NULL && pool(d) != NULL ? "yes" : "no");
			fclose(f);
		}
	}
	return d;
}

void tflite_plugin_destroy_delegate(void* d) {
	xnn_delete_fn del = (xnn_delete_fn)dlsym(RTLD_DEFAULT, "TfLiteXNNPackDelegateDelete");
	if (d != NULL && del != NULL) del(d);
}
