/**
 * Wait, letting React render, until `check` holds (about 3 s at most).
 */
import { act } from 'react';

export async function until(
  check: () => boolean,
  what: string,
  tries = 300
): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (check()) {
      return;
    }
    await act(async () => new Promise(resolve => setTimeout(resolve, 10)));
  }
  throw new Error(`timed out waiting for ${what}`);
}
