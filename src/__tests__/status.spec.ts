import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { TUNNEL_STATES } from '../states';
import { tunnelLabel } from '../status';

/**
 * A bundle that marks what went through it, so a state that falls through
 * untranslated shows.
 */
const marking: TranslationBundle = {
  ...nullTranslator.load('sshpyk'),
  __: (text: string, ...args: any[]) =>
    `«${text.replace('%1', String(args[0]))}»`
};

describe('tunnelLabel', () => {
  it.each(TUNNEL_STATES.map(state => [state]))(
    'words the %s state through the translation bundle',
    state => {
      const words = state.replace('_', ' '); // login_needed: "login needed"
      expect(tunnelLabel(state, null, marking)).toBe(`«${words}»`);
      expect(tunnelLabel(state)).toBe(words);
    }
  );

  it('names the launch step while launching, and only then', () => {
    expect(tunnelLabel('launching', 'forwarding ports')).toBe(
      'launching: forwarding ports'
    );
    expect(tunnelLabel('launching', 'ssh', marking)).toBe('«launching: ssh»');
    expect(tunnelLabel('connected', 'forwarding ports')).toBe('connected');
  });
});
