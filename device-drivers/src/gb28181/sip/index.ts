/** SIP for GB/T 28181: message codec, UDP/TCP transport, transactions and digest authentication. */
export * from './digest.ts';
export * from './endpoint.ts';
export * from './message.ts';
export * from './stream-framer.ts';
export * from './transport.ts';
