/**
 * Live video through a gateway (GB/T 28181-2016 §9.2.2 in a cascade): the upper platform's
 * INVITE for a channel becomes the lower platform's INVITE to the device that has it, with
 * the upper platform's receiving address, port, transport and SSRC, so the camera sends its
 * RTP straight to the upper platform. A BYE from either side ends both dialogs.
 */
import { CitysenseError } from '@citysense/protocol';
import type { LiveMediaHandle, LiveMediaHandler, LiveMediaRequest } from '../device/live-media.ts';
import type { Gb28181Platform, LiveDialog } from '../platform/platform.ts';
import { GB_CASCADE_NO_ROUTE } from './errors.ts';

/** Forwards live INVITEs to the lower platform. Constructor assigns only. */
export class CascadeLiveForwarder implements LiveMediaHandler {
  readonly #platform: Gb28181Platform;
  readonly #ownerOf: (channelId: string) => string | undefined;

  constructor(platform: Gb28181Platform, ownerOf: (channelId: string) => string | undefined) {
    this.#platform = platform;
    this.#ownerOf = ownerOf;
  }

  /** INVITEs the camera; rejects CS_ERR_GB_CASCADE_NO_ROUTE or the platform's INVITE error. */
  async start(request: LiveMediaRequest): Promise<LiveMediaHandle> {
    const { channelId, offer, ssrc } = request;
    const deviceId = this.#ownerOf(channelId);
    if (deviceId === undefined)
      throw new CitysenseError(
        GB_CASCADE_NO_ROUTE,
        `no device behind this gateway has channel ${channelId}; query the gateway's catalog again`,
        404,
      );
    const platform = this.#platform;
    const dialog = await platform.invite({
      deviceId,
      channelId,
      mediaAddress: offer.host,
      mediaPort: offer.port,
      transport: offer.transport,
      ssrc,
    });
    if (request.signal.aborted) {
      await platform.bye(dialog.id);
      throw new CitysenseError('CS_ERR_ABORTED', 'the upstream dialog ended while the camera answered', 499);
    }
    let finish: (why: Error | undefined) => void = () => undefined;
    const ended = new Promise<Error | undefined>((resolve) => {
      finish = resolve;
    });
    const listener = (gone: LiveDialog, by: 'device' | 'platform'): void => {
      if (gone.id !== dialog.id) return;
      platform.off('liveEnded', listener);
      // The camera hung up (or the lower platform stopped): the device then hangs up upstream.
      finish(by === 'device' ? undefined : new Error('the lower platform ended the dialog'));
    };
    platform.on('liveEnded', listener);
    return {
      ended,
      stop: async () => {
        platform.off('liveEnded', listener);
        // An already ended dialog is ignored by the platform.
        await platform.bye(dialog.id);
      },
    };
  }
}
