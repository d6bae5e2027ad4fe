const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * Local mean solar hour in [0, 24) at `time` (ms since the epoch) and `longitude`
 * (degrees east): UTC shifted by 4 minutes per degree. Beijing (116.4°E) is about
 * 14 minutes behind its UTC+8 clock, close enough for dusk and rush hour.
 */
export function localSolarHour(time: number, longitude: number): number {
  const local = time + (longitude / 15) * HOUR_MS;
  return (((local % DAY_MS) + DAY_MS) % DAY_MS) / HOUR_MS;
}

/** Day of the year in [0, 365] at `time` and `longitude`, for the seasonal temperature. */
export function localDayOfYear(time: number, longitude: number): number {
  const local = new Date(time + (longitude / 15) * HOUR_MS);
  return Math.floor((local.getTime() - Date.UTC(local.getUTCFullYear(), 0, 1)) / DAY_MS);
}

/** Shortest distance in hours between two hours of the day, across midnight. */
export function hourDistance(a: number, b: number): number {
  const d = Math.abs(a - b) % 24;
  return Math.min(d, 24 - d);
}
