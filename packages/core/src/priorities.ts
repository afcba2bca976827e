/**
 * Job priorities by name, as BullMQ priority numbers: lower runs first.
 */
export const PRIORITIES = {
  urgent: 1,
  high: 3,
  normal: 5,
  low: 7,
  background: 10,
} as const;

/** A priority name. */
export type PriorityName = keyof typeof PRIORITIES;

/** The priority names, most urgent first. */
export const PRIORITY_NAMES = Object.keys(PRIORITIES) as [PriorityName, ...PriorityName[]];

/** The name for a BullMQ priority number (the nearest name at or below it). */
export function priorityName(value: number): PriorityName {
  let name: PriorityName = "urgent";
  for (const candidate of PRIORITY_NAMES) {
    if (PRIORITIES[candidate] <= value) name = candidate;
  }
  return name;
}
