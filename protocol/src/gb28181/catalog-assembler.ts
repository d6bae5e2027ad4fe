/** Collects the pages of one Catalog answer (GB/T 28181-2016 §9.5.2: paged by SumNum / DeviceList Num). */
import { CitysenseError } from '../errors.ts';
import type { CatalogItem, CatalogResponse } from './types.ts';

/** Gathers Catalog pages for one device and SN until SumNum distinct items arrived, in any order. */
export class CatalogAssembler {
  readonly deviceId: string;
  readonly sn: number;
  #sumNum: number | undefined;
  readonly #items = new Map<string, CatalogItem>();

  constructor(deviceId: string, sn: number) {
    this.deviceId = deviceId;
    this.sn = sn;
  }

  /** Adds a page; a page of another device or SN, or with a different SumNum, is refused. */
  add(page: CatalogResponse): void {
    if (page.deviceId !== this.deviceId || page.sn !== this.sn)
      throw new CitysenseError(
        'CS_ERR_MANSCDP_CATALOG_MISMATCH',
        `Catalog page of ${page.deviceId} SN ${page.sn} does not belong to the query of ${this.deviceId} SN ${this.sn}`,
        400,
      );
    if (this.#sumNum !== undefined && page.sumNum !== this.#sumNum)
      throw new CitysenseError(
        'CS_ERR_MANSCDP_CATALOG_MISMATCH',
        `Catalog page of ${page.deviceId} SN ${page.sn} says SumNum ${page.sumNum}, earlier pages said ${this.#sumNum}`,
        400,
      );
    this.#sumNum = page.sumNum;
    // A repeated DeviceID (resent page) replaces the earlier copy instead of counting twice.
    for (const item of page.items) this.#items.set(item.deviceId, item);
  }

  /** SumNum announced by the pages so far; undefined before the first page. */
  get sumNum(): number | undefined {
    return this.#sumNum;
  }

  /** True once SumNum distinct items have arrived. */
  get complete(): boolean {
    return this.#sumNum !== undefined && this.#items.size >= this.#sumNum;
  }

  /** Distinct items received so far, in arrival order. */
  get items(): CatalogItem[] {
    return [...this.#items.values()];
  }
}
