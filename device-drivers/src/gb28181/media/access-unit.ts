/** The unit the media plane hands to consumers: one coded video picture. */

/** Video codecs GB/T 28181 carries in PS (2016: H.264; 2022 adds H.265). */
export type VideoCodec = 'h264' | 'h265';

/** One access unit (coded picture) as Annex B bytes, with its 90 kHz presentation time. */
export interface VideoAccessUnit {
  codec: VideoCodec;
  /** Presentation timestamp in 90 kHz units (33-bit MPEG clock). */
  pts90k: number;
  /** Annex B byte stream of the picture, start codes included, parameter sets before keyframes. */
  data: Buffer;
  /** True for IDR (H.264) / IRAP (H.265) pictures, where a decoder can start. */
  keyframe: boolean;
}
