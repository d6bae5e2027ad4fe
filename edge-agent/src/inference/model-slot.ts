/** The detector an assignment's sources share, swappable while frames flow. */
import { type Detection, type Detector, type FrameImage, imageSourceOf } from '@citysense/algorithms';
import { CitysenseError } from '@citysense/protocol';

/** A loaded, warmed-up model of one algorithm version. */
export interface LoadedModel {
  algorithmId: string;
  version: string;
  sha256: string;
  detector: Detector;
}

/** One inference and the model that made it. */
export interface SlotDetection {
  model: LoadedModel;
  detection: Detection;
}

/**
 * Holds the active model. `detect` binds a frame to the model active when the frame
 * arrives; `swap` sends the next frames to the new model, waits until every frame
 * already given to the old one has its result, then releases the old one.
 */
export class ModelSlot {
  #current: LoadedModel | null = null;
  /** Frames in inference per model, and who waits for a model to have none. */
  readonly #inFlight = new Map<LoadedModel, { frames: number; drained: Array<() => void> }>();

  /** The active model; null before the first one is loaded. */
  get current(): LoadedModel | null {
    return this.#current;
  }

  /** Infers one frame on the active model. */
  async detect(image: FrameImage): Promise<SlotDetection> {
    const model = this.#current;
    if (!model)
      throw new CitysenseError('CS_ERR_INFERENCE_NO_MODEL', 'no model is active for this assignment', 409);
    const entry = this.#inFlight.get(model) ?? { frames: 0, drained: [] };
    this.#inFlight.set(model, entry);
    entry.frames++;
    try {
      return { model, detection: await model.detector.detect(imageSourceOf(image)) };
    } finally {
      entry.frames--;
      if (entry.frames === 0) {
        this.#inFlight.delete(model);
        for (const resolve of entry.drained.splice(0)) resolve();
      }
    }
  }

  /** Activates `next`; resolves with the former model once its last frame is done and it is released. */
  async swap(next: LoadedModel): Promise<LoadedModel | null> {
    const old = this.#current;
    this.#current = next;
    if (old && old !== next) await this.#retire(old);
    return old;
  }

  /** Releases the active model (assignment withdrawn, agent stopping). Idempotent. */
  async release(): Promise<void> {
    const model = this.#current;
    this.#current = null;
    if (model) await this.#retire(model);
  }

  async #retire(model: LoadedModel): Promise<void> {
    const entry = this.#inFlight.get(model);
    if (entry) await new Promise<void>((resolve) => entry.drained.push(resolve));
    await model.detector.release();
  }
}
