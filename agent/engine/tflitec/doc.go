// Package tflitec is a minimal binding to TensorFlow Lite's C API
// (libtensorflowlite_c, tensorflow/lite/core/c/c_api.h) that loads the
// library at run time with dlopen instead of linking it: an agent built with
// -tags tflite starts on every board, reports a missing or incompatible
// library as an error (so the agent can fall back to its pure-Go runtime),
// and needs neither TensorFlow headers nor the library to build. Only the
// stable C API is used (models, interpreter options, interpreters, tensors,
// TfLiteInterpreterOptionsAddDelegate, and the XNNPACK delegate the library
// exports); delegate plugins are loaded by package delegate.
//
// The cgo code is compiled only with the build tag tflite; without it this
// package holds only this documentation and the default agent stays
// CGO-free.
package tflitec

// LibraryName is the library's usual file name (also a soname the dynamic
// loader finds through LD_LIBRARY_PATH and ld.so.cache).
const LibraryName = "libtensorflowlite_c.so"
