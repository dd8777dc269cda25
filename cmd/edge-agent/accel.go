package main

import (
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/edgefleet/edgefleet/agent/engine"
)

// accelFlags are edge-agent run's acceleration flags (docs/acceleration.md).
type accelFlags struct {
	delegate, fallback, tfliteLib string
	options                       []string
}

func (a *accelFlags) bind(f *pflag.FlagSet) {
	f.StringVar(&a.delegate, "delegate", "", "TensorFlow Lite delegate: edgetpu, gpu, xnnpack, none or the path of an external-delegate plugin .so (tflite builds; also EDGE_DELEGATE)")
	f.StringArrayVar(&a.options, "delegate-option", nil, "key=value passed to the delegate plugin, repeatable (also EDGE_DELEGATE_OPTIONS, ';'-separated)")
	f.StringVar(&a.fallback, "fallback", "", "none or native: run a model on the pure-Go runtime when TensorFlow Lite or its delegate is unavailable (also EDGE_FALLBACK)")
	f.StringVar(&a.tfliteLib, "tflite-lib", "", "path of libtensorflowlite_c (default: detected, else the dynamic loader's libtensorflowlite_c.so; also EDGE_TFLITE_LIB)")
}

// register builds the backend for --backend and the acceleration flags
// (environment variables fill what the flags leave empty), registers it
// and returns the name to hand to the daemon.
func (a *accelFlags) register(backend string) (string, error) {
	env := func(v *string, key string) {
		if *v == "" {
			*v = os.Getenv(key)
		}
	}
	env(&a.delegate, "EDGE_DELEGATE")
	env(&a.fallback, "EDGE_FALLBACK")
	env(&a.tfliteLib, "EDGE_TFLITE_LIB")
	if len(a.options) == 0 {
		for _, o := range strings.Split(os.Getenv("EDGE_DELEGATE_OPTIONS"), ";") {
			if o = strings.TrimSpace(o); o != "" {
				a.options = append(a.options, o)
			}
		}
	}
	b, err := engine.Select(engine.Selection{Backend: backend, Delegate: a.delegate, DelegateOptions: a.options, Fallback: a.fallback, TFLiteLibrary: a.tfliteLib})
	if err != nil {
		return "", err
	}
	engine.Register(b)
	return b.Name(), nil
}
