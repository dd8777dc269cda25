// Package broker runs the fleet's MQTT broker and describes who may use it.
//
// It holds the access rules shared by every broker (Allowed: a device may
// publish and subscribe only its own topics, the fleet server everything
// under the fleet root), the embedded broker (mochi-mqtt with an auth hook)
// and the server's transport to it or to an external broker. The password
// hash format and the Mosquitto files live in fleet/broker/mosquitto.
package broker
