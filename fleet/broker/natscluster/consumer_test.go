package natscluster_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/edgefleet/edgefleet/fleet/broker/brokertest"
	"github.com/edgefleet/edgefleet/fleet/broker/natscluster"
	"github.com/edgefleet/edgefleet/fleet/broker/natscluster/natstest"
	"github.com/edgefleet/edgefleet/internal/waitfor"
	"github.com/edgefleet/edgefleet/internal/wire"
)

// TestConsumerUnfiltered: the replicas' durable consumer has no subject
// filter (NATS then reads the next sequence instead of intersecting the
// block's per-device subject index with the filters for every message);
// the server's own QoS 1 message to a device that holds a QoS 1
// subscription — kept in the same stream — is acknowledged without
// reaching the handler and still reaches the device; the device's
// messages to the server are handled (control).
func TestConsumerUnfiltered(t *testing.T) {
	accts := brokertest.NewAccounts(t, "fleet-server", "server-secret")
	accts.Add(t, "d1", "pw")
	cl := natstest.Start(t, 1, accts)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := cl.Nodes[0].MQTTURL()
	srv := mqttClient(t, "fleet-server-a", "fleet-server", "server-secret", url)

	var mu sync.Mutex
	var handled []string
	c, err := natscluster.Consume(ctx, natscluster.ConsumerConfig{URLs: cl.ClientURLs(), User: "fleet-server", Password: "server-secret",
		AckWait: 10 * time.Second, Workers: 1, // in stream order
		Handle: func(_ context.Context, topic string, _ []byte) error {
			mu.Lock()
			handled = append(handled, topic)
			mu.Unlock()
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	dev := mqttClient(t, "d1", "d1", "pw", url)
	notified := make(chan string, 1)
	tok := dev.Subscribe(wire.JobsNotifyTopic("d1"), 1, func(_ paho.Client, m paho.Message) { notified <- string(m.Payload()) })
	if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	if tok := srv.Publish(wire.JobsNotifyTopic("d1"), 1, false, "jobs"); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("server publish: %v", tok.Error())
	}
	for _, topic := range []string{wire.TelemetryTopic("d1"), wire.JobsGetTopic("d1")} {
		if tok := dev.Publish(topic, 1, false, "x"); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("device publish %s: %v", topic, tok.Error())
		}
	}
	select {
	case p := <-notified:
		if p != "jobs" {
			t.Fatalf("device got %q", p)
		}
	case <-ctx.Done():
		t.Fatal("the device never got the server's QoS 1 message")
	}
	waitfor.Until(t, "both device messages handled", func() bool { mu.Lock(); defer mu.Unlock(); return len(handled) >= 2 })
	mu.Lock()
	if want := []string{wire.TelemetryTopic("d1"), wire.JobsGetTopic("d1")}; strings.Join(handled, " ") != strings.Join(want, " ") {
		t.Errorf("handled %v, want only the device's messages %v", handled, want)
	}
	mu.Unlock()

	nc, err := nats.Connect(strings.Join(cl.ClientURLs(), ","), nats.UserInfo("fleet-server", "server-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.Consumer(ctx, natscluster.MQTTStream, natscluster.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	var info *jetstream.ConsumerInfo
	waitfor.Until(t, "every message acknowledged", func() bool {
		info, err = cons.Info(ctx)
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0 && info.Delivered.Consumer >= 3
	})
	if info.Config.FilterSubject != "" || len(info.Config.FilterSubjects) != 0 {
		t.Errorf("consumer filters %q %v, want none", info.Config.FilterSubject, info.Config.FilterSubjects)
	}
}
