// Package mosquitto is what an external Mosquitto broker needs from the
// fleet: the password hash format (Mosquitto's PBKDF2-SHA512 "$7$", so one
// stored hash works in the embedded broker and in a Mosquitto password
// file) and the generator of its password, ACL and config files. It does not
// import an MQTT implementation, so fleetctl can write the files without
// linking a broker.
package mosquitto
