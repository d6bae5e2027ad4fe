/** GB/T 28181 media plane: RTP, RFC 4571 framing, MPEG-PS mux/demux, receiver and simulated sender. */
export * from './access-unit.ts';
export * from './access-unit-queue.ts';
export * from './annexb.ts';
export * from './errors.ts';
export * from './ps-demux.ts';
export * from './ps-mux.ts';
export * from './ps-rtp-packetizer.ts';
export * from './rtp.ts';
export * from './rtp-receiver.ts';
export * from './rtp-reorder.ts';
export * from './rtp-sender.ts';
export * from './rtp-tcp-framing.ts';
