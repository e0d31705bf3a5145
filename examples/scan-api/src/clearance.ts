// The clearance rule of the scan API: a scan carries one decision per
// clearance group (a Keyward resource), and a token's resource grants are
// ranked. The first group in the ranking that has a decision for the scan
// wins, so a token ranked [night-shift, day-shift] reads the night shift's
// decision whenever the scan has one, and the day shift's otherwise.

export type Decision = 'cleared' | 'denied';

export interface Clearance {
  /** The clearance group: a Keyward resource id (res_…). */
  group: string;
  decision: Decision;
}

/** The deciding clearance: the first group of `ranking` that `clearances` decides, or undefined when none does. */
export function decideClearance(ranking: readonly string[], clearances: readonly Clearance[]): Clearance | undefined {
  for (const group of ranking) {
    const decided = clearances.find((clearance) => clearance.group === group);
    if (decided) return decided;
  }
  return undefined;
}
