/* A shared library that exports nothing a TensorFlow Lite external
 * delegate needs: the loader must reject it with a clear error. */
int not_a_delegate(void) { return 42; }
