import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { TunnelState } from './states';

/**
 * The words for a tunnel state, with the launch step while launching.
 */
export function tunnelLabel(
  state: TunnelState,
  step?: string | null,
  trans: TranslationBundle = nullTranslator.load('sshpyk')
): string {
  if (state === 'launching' && step) {
    return trans.__('launching: %1', step);
  }
  switch (state) {
    case 'launching':
      return trans.__('launching');
    case 'connected':
      return trans.__('connected');
    case 'reconnecting':
      return trans.__('reconnecting');
    case 'lost':
      return trans.__('lost');
    case 'login_needed':
      return trans.__('login needed');
    case 'dead':
      return trans.__('dead');
  }
  return state;
}
