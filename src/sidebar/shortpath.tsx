/**
 * The Add form's short path, below the host: "Check connection" (a login
 * through the login flow, whose questions open Lab's login dialog), then the
 * host's Python environments, of which the user picks one or several (one
 * kernelspec each). Environments without ipykernel are listed, not pickable,
 * with the command that makes them so.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import {
  IEnvironment,
  IEnvironments,
  isUsable,
  pipHint
} from '../environments';
import { describeError } from '../errors';
import type { ISshpykLogins } from '../login/tokens';
import { ISshpykModel } from '../tokens';

/**
 * Where the connection check is: `login` while the host's connection is
 * made (ssh's questions in the login dialog), `discovering` while the host is
 * searched for environments.
 */
export type ConnectionPhase =
  'idle' | 'login' | 'discovering' | 'done' | 'failed';

/**
 * The short path's state: plain data, so the form re-renders when it changes.
 */
export interface IShortPathState {
  phase: ConnectionPhase;
  /** the host (and ssh config) the check was for */
  checked: string | null;
  error: string | null;
  found: IEnvironments | null;
  /** the prefixes of the chosen environments */
  picks: string[];
}

/**
 * What the login flow offers the form (the login plugin's `ISshpykLogins`).
 */
export type FormLogins = Pick<ISshpykLogins, 'start' | 'logins' | 'changed'>;

const IDLE: IShortPathState = {
  phase: 'idle',
  checked: null,
  error: null,
  found: null,
  picks: []
};

/**
 * Resolves when a login ends: null once connected, else why it failed.
 */
export function loginOutcome(
  logins: FormLogins,
  id: string
): Promise<string | null> {
  return new Promise(resolve => {
    const look = () => {
      const login = logins.logins.find(l => l.id === id);
      if (login?.state === 'connected' || login?.state === 'failed') {
        logins.changed.disconnect(look);
        resolve(
          login.state === 'connected'
            ? null
            : (login.error ?? 'the login did not succeed')
        );
      }
    };
    logins.changed.connect(look);
    look();
  });
}

/**
 * The short path's state and its two actions; `check` and `toggle` keep
 * their identity (the form compares its context deeply, functions as equal).
 */
export function useShortPath(
  model: Pick<ISshpykModel, 'discoverEnvironments'>,
  logins: FormLogins | null | undefined,
  alias: string,
  sshConfig: string | null
): {
  state: IShortPathState;
  check: () => void;
  toggle: (prefix: string, on: boolean) => void;
} {
  const [state, setState] = React.useState<IShortPathState>(IDLE);
  const key = `${alias}\u0000${sshConfig ?? ''}`;
  const current = React.useRef({ alias, sshConfig, key, model, logins });
  current.current = { alias, sshConfig, key, model, logins };

  // another host: what was found was for the one before
  React.useEffect(() => {
    setState(s => (s.checked === null || s.checked === key ? s : IDLE));
  }, [key]);

  const check = React.useCallback(() => {
    const { alias, sshConfig, key, model, logins } = current.current;
    if (!alias) {
      return;
    }
    const still = () => current.current.key === key;
    const fail = (error: string) =>
      still() && setState({ ...IDLE, phase: 'failed', checked: key, error });
    void (async () => {
      try {
        if (logins) {
          setState({ ...IDLE, phase: 'login', checked: key });
          const login = await logins.start(alias, sshConfig);
          const error =
            login.state === 'connected'
              ? null
              : await loginOutcome(logins, login.id);
          if (error !== null) {
            fail(error);
            return;
          }
        }
        if (!still()) {
          return;
        }
        setState({ ...IDLE, phase: 'discovering', checked: key });
        const found = await model.discoverEnvironments(alias, sshConfig);
        if (still()) {
          // one usable environment: it is the obvious choice
          const usable = found.environments.filter(isUsable);
          setState({
            ...IDLE,
            phase: 'done',
            checked: key,
            found,
            picks: usable.length === 1 ? [usable[0].prefix] : []
          });
        }
      } catch (error) {
        fail(describeError(error));
      }
    })();
  }, []);

  const toggle = React.useCallback((prefix: string, on: boolean) => {
    setState(s => ({
      ...s,
      picks: on
        ? [...s.picks.filter(p => p !== prefix), prefix]
        : s.picks.filter(p => p !== prefix)
    }));
  }, []);

  return { state, check, toggle };
}

/**
 * The environments the user chose, in the order listed.
 */
export function chosenEnvironments(state: IShortPathState): IEnvironment[] {
  return (state.found?.environments ?? []).filter(
    env => isUsable(env) && state.picks.includes(env.prefix)
  );
}

function phaseWords(
  state: IShortPathState,
  alias: string,
  trans: TranslationBundle
): string {
  switch (state.phase) {
    case 'idle':
      return alias
        ? trans.__(
            'Check the connection to list the Python environments on %1.',
            alias
          )
        : trans.__('Choose a host, then check the connection.');
    case 'login':
      return trans.__('Connecting to %1…', alias);
    case 'discovering':
      return trans.__(
        'Connected. Looking for Python environments on %1…',
        alias
      );
    case 'failed':
      return trans.__('Could not connect to %1: %2', alias, state.error ?? '');
    case 'done': {
      const n = state.found?.environments.length ?? 0;
      return n === 0
        ? trans.__('Connected. No Python environment found on %1.', alias)
        : trans._n(
            'Connected. %1 Python environment on %2:',
            'Connected. %1 Python environments on %2:',
            n,
            alias
          );
    }
  }
}

function EnvironmentRow(props: {
  env: IEnvironment;
  picked: boolean;
  onToggle: (prefix: string, on: boolean) => void;
  trans: TranslationBundle;
}): JSX.Element {
  const { env, picked, trans } = props;
  const usable = isUsable(env);
  const id = `sshpyk-env-${env.prefix.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return (
    <li
      className={`jp-sshpyk-Env${usable ? '' : ' jp-mod-disabled'}`}
      data-testid="sshpyk-env"
      data-prefix={env.prefix}
    >
      <input
        id={id}
        type="checkbox"
        checked={usable && picked}
        disabled={!usable}
        aria-describedby={`${id}__detail`}
        onChange={event => props.onToggle(env.prefix, event.target.checked)}
      />
      <label htmlFor={id} className="jp-sshpyk-Env-name">
        {env.name} <span className="jp-sshpyk-Env-kind">{env.kind}</span>
      </label>
      <div className="jp-sshpyk-Env-detail" id={`${id}__detail`}>
        <code>{env.prefix}</code>
        {env.python && <span>{trans.__(', Python %1', env.python)}</span>}
        {env.module && (
          <span>{trans.__(' (module load %1 first)', env.module)}</span>
        )}
        {env.error ? (
          <div className="jp-sshpyk-FieldNote-error">{env.error}</div>
        ) : (
          !env.ipykernel && (
            <div className="jp-sshpyk-Env-hint" data-testid="sshpyk-env-hint">
              {trans.__('No ipykernel here; install it with ')}
              <code>{pipHint(env)}</code>
            </div>
          )
        )}
      </div>
    </li>
  );
}

/**
 * The check button, what it found, and the environments to pick.
 */
export function ShortPath(props: {
  alias: string;
  state: IShortPathState;
  onCheck: () => void;
  onToggle: (prefix: string, on: boolean) => void;
  disabled?: boolean;
  trans: TranslationBundle;
}): JSX.Element {
  const { alias, state, trans } = props;
  const busy = state.phase === 'login' || state.phase === 'discovering';
  const envs = state.found?.environments ?? [];
  return (
    <div className="jp-sshpyk-ShortPath" data-testid="sshpyk-short-path">
      <button
        type="button"
        className="jp-mod-styled jp-mod-accept"
        data-testid="sshpyk-check-connection"
        disabled={!alias || busy || props.disabled}
        onClick={props.onCheck}
      >
        {state.phase === 'done' || state.phase === 'failed'
          ? trans.__('Check again')
          : trans.__('Check connection')}
      </button>
      <div
        className={`jp-sshpyk-FieldNote${state.phase === 'failed' ? ' jp-sshpyk-FieldNote-error' : ''}`}
        role="status"
        aria-busy={busy}
        data-testid="sshpyk-connection-note"
        data-phase={state.phase}
      >
        {phaseWords(state, alias, trans)}
      </div>
      {envs.length > 0 && (
        <fieldset className="jp-sshpyk-Envs">
          <legend>{trans.__('Python environments')}</legend>
          <ul data-testid="sshpyk-environments">
            {envs.map(env => (
              <EnvironmentRow
                key={env.prefix}
                env={env}
                picked={state.picks.includes(env.prefix)}
                onToggle={props.onToggle}
                trans={trans}
              />
            ))}
          </ul>
          <div className="jp-sshpyk-FieldNote" data-testid="sshpyk-picked">
            {trans._n(
              '%1 environment chosen: one kernel each.',
              '%1 environments chosen: one kernel each.',
              state.picks.length
            )}
          </div>
        </fieldset>
      )}
      {(state.found?.errors ?? []).map(error => (
        <div key={error} className="jp-sshpyk-FieldNote">
          {error}
        </div>
      ))}
    </div>
  );
}
