/* A real TensorFlow Lite external-delegate plugin for the loader's tests,
 * built by the tests with the system C compiler. The TfLiteDelegate layout
 * below is declared from the documented C ABI (tensorflow/lite/core/c/
 * common.h), not copied from TensorFlow: data_, Prepare, three buffer-handle
 * callbacks, flags, opaque_delegate_builder. Its Prepare claims no node, so
 * TensorFlow Lite would run every op on its own kernels.
 *
 * Options understood:
 *   fail=MSG              report MSG and return NULL
 *   null_prepare=1        return a delegate without Prepare (unusable)
 *   destroy_marker=PATH   write "destroyed" to PATH when destroyed
 *   prepare_error=1       Prepare fails (a delegate that cannot take the
 *                         graph: TensorFlow Lite's interpreter creation
 *                         fails with a delegate error)
 * Every option is echoed as "key=value;" into the string at data_.
 * Built with -DNO_DESTROY it lacks tflite_plugin_destroy_delegate. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct TestDelegate {
	void* data_;
	int (*Prepare)(void* context, struct TestDelegate* delegate);
	void* CopyFromBufferHandle;
	void* CopyToBufferHandle;
	void* FreeBufferHandle;
	int64_t flags;
	void* opaque_delegate_builder;
	char* marker;
} TestDelegate;

static int prepare(void* context, TestDelegate* delegate) { return 0; /* kTfLiteOk */ }
static int prepare_error(void* context, TestDelegate* delegate) { return 1; /* kTfLiteError */ }

TestDelegate* tflite_plugin_create_delegate(char** keys, char** values, size_t n, void (*report_error)(const char*)) {
	TestDelegate* d = calloc(1, sizeof *d);
	size_t len = 1;
	for (size_t i = 0; i < n; i++) len += strlen(keys[i]) + strlen(values[i]) + 2;
	char* echo = calloc(len, 1);
	d->Prepare = prepare;
	for (size_t i = 0; i < n; i++) {
		strcat(echo, keys[i]);
		strcat(echo, "=");
		strcat(echo, values[i]);
		strcat(echo, ";");
		if (strcmp(keys[i], "fail") == 0) {
			report_error(values[i]);
			free(echo);
			free(d);
			return NULL;
		}
		if (strcmp(keys[i], "null_prepare") == 0) d->Prepare = NULL;
		if (strcmp(keys[i], "prepare_error") == 0) d->Prepare = prepare_error;
		if (strcmp(keys[i], "destroy_marker") == 0) d->marker = strdup(values[i]);
	}
	d->data_ = echo;
	return d;
}

#ifndef NO_DESTROY
void tflite_plugin_destroy_delegate(TestDelegate* d) {
	if (d == NULL) return;
	if (d->marker) {
		FILE* f = fopen(d->marker, "w");
		if (f) {
			fputs("destroyed", f);
			fclose(f);
		}
		free(d->marker);
	}
	free(d->data_);
	free(d);
}
#endif
