/**
 * Occlusion heuristic: something close to the lens (a hand, a bag, a board, a lens cap) shows up as one
 * large area that is dark and textureless, while the rest of the picture still has content. We mark the
 * cells of the luma thumbnail grid that are both dark and flat, and measure the largest 4-connected area of
 * such cells. Uniformly dark pictures (night, under-exposure) are told apart by the brightness of what
 * lies outside that area, which the diagnoser compares against the too-dark threshold.
 */

/** A cell whose mean luma is at most this counts as dark (0–255). */
export const OCCLUDED_CELL_MAX_LUMA = 48;
/** A cell whose luma std-dev is at most this counts as flat (0–255). */
export const OCCLUDED_CELL_MAX_STD_DEV = 6;

/** The largest dark, flat connected area of a cell grid. */
export interface OccludedArea {
  /** Share of the cells (0–1) in the largest dark, flat 4-connected area. */
  share: number;
  /** Mean luma of the cells outside that area (0–255); the frame mean when there is no such area. */
  remainderLuma: number;
}

/** Largest 4-connected area of cells that are dark and flat, from per-cell luma mean and std-dev. */
export function largestOccludedArea(
  cellMean: Float32Array,
  cellStdDev: Float32Array,
  cols: number,
  rows: number,
): OccludedArea {
  const cells = cols * rows;
  const candidate = new Uint8Array(cells);
  let total = 0;
  for (let i = 0; i < cells; i++) {
    const mean = cellMean[i] as number;
    total += mean;
    if (mean <= OCCLUDED_CELL_MAX_LUMA && (cellStdDev[i] as number) <= OCCLUDED_CELL_MAX_STD_DEV)
      candidate[i] = 1;
  }
  const stack = new Int32Array(cells);
  // Labels: 1 = unvisited candidate, 2 = visited, 3 = in the largest area (second fill from its seed).
  const fill = (seed: number, from: number, to: number): { size: number; luma: number } => {
    let size = 0;
    let luma = 0;
    let top = 0;
    const push = (j: number): void => {
      if (candidate[j] !== from) return;
      candidate[j] = to;
      stack[top++] = j;
    };
    push(seed);
    while (top > 0) {
      const i = stack[--top] as number;
      size++;
      luma += cellMean[i] as number;
      const x = i % cols;
      if (x > 0) push(i - 1);
      if (x < cols - 1) push(i + 1);
      if (i >= cols) push(i - cols);
      if (i + cols < cells) push(i + cols);
    }
    return { size, luma };
  };
  let best = 0;
  let bestSeed = -1;
  for (let seed = 0; seed < cells; seed++) {
    if (candidate[seed] !== 1) continue;
    const { size } = fill(seed, 1, 2);
    if (size > best) {
      best = size;
      bestSeed = seed;
    }
  }
  if (best === 0 || best === cells) return { share: best / cells, remainderLuma: total / cells };
  const inside = fill(bestSeed, 2, 3).luma;
  return { share: best / cells, remainderLuma: (total - inside) / (cells - best) };
}
