/** Version of the hub, reported in /health and the OpenAPI document. */
export const HUB_VERSION = '0.1.0';
