import mqtt, { type MqttClient } from 'mqtt';

/** Connects an MQTT client as an enrolled node (no automatic reconnect), for tests. */
export function connectNode(url: string, username: string, password: string): Promise<MqttClient> {
  return mqtt.connectAsync(url, {
    username,
    password,
    clientId: `${username}-${Math.random().toString(16).slice(2)}`,
    reconnectPeriod: 0,
  });
}
