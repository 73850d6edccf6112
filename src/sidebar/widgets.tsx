import type { WidgetProps } from '@rjsf/utils';
import * as React from 'react';

import { IHost, IRemoteKernelspec } from '../api';
import { describeError } from '../errors';
import { suggestKernelName } from '../formdata';
import { IFormContext } from './context';

const OTHER = '\u0000other';

function text(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

/**
 * Runs `load` after the inputs settle, dropping answers that arrive after the
 * inputs changed again.
 */
function useDebounced<T>(
  load: (() => Promise<T>) | null,
  deps: unknown[],
  delay: number
): { data: T | null; error: string | null; loading: boolean } {
  const [state, setState] = React.useState<{
    data: T | null;
    error: string | null;
    loading: boolean;
  }>({ data: null, error: null, loading: false });
  React.useEffect(() => {
    if (!load) {
      setState({ data: null, error: null, loading: false });
      return;
    }
    let active = true;
    setState(s => ({ ...s, error: null, loading: true }));
    const timer = setTimeout(() => {
      load().then(
        data => active && setState({ data, error: null, loading: false }),
        error =>
          active &&
          setState({ data: null, error: describeError(error), loading: false })
      );
    }, delay);
    return () => {
      active = false;
      clearTimeout(timer);
    };
  }, deps);
  return state;
}

function hostDetail(host: IHost, trans: IFormContext['trans']): string {
  const user = host.user ? `${host.user}@` : '';
  const address = `${user}${host.hostname ?? host.alias}:${host.port ?? 22}`;
  return host.proxyjump
    ? trans.__('%1, via %2', address, host.proxyjump)
    : address;
}

/**
 * The SSH host alias: one of the ssh config's hosts, or typed.
 */
export function HostAliasWidget(props: WidgetProps): JSX.Element {
  const ctx = props.formContext as IFormContext;
  const { trans } = ctx;
  const sshConfig = text(ctx.formData.ssh_config) || null;
  const value = text(props.value);
  const [typing, setTyping] = React.useState(false);
  const { data, error, loading } = useDebounced(
    () => ctx.model.listHosts(sshConfig),
    [sshConfig],
    300
  );
  const hosts = (data?.hosts ?? []).filter(h => !h.error);
  const known = hosts.some(h => h.alias === value);
  const showInput =
    typing || (value !== '' && !known && !loading) || error !== null;

  return (
    <div className="jp-sshpyk-Combo">
      <select
        id={props.id}
        className="jp-mod-styled"
        data-testid="sshpyk-host-select"
        value={showInput ? OTHER : value}
        disabled={props.disabled || props.readonly}
        aria-describedby={`${props.id}__description`}
        onChange={event => {
          const choice = event.target.value;
          setTyping(choice === OTHER);
          if (choice !== OTHER) {
            props.onChange(choice || undefined);
          }
        }}
      >
        <option value="">
          {loading
            ? trans.__('Reading the ssh config…')
            : trans.__('Choose a host')}
        </option>
        {hosts.map(h => (
          <option key={h.alias} value={h.alias}>
            {`${h.alias} (${hostDetail(h, trans)})`}
          </option>
        ))}
        <option value={OTHER}>{trans.__('Another host (type it)…')}</option>
      </select>
      {showInput && (
        <input
          type="text"
          className="jp-mod-styled"
          aria-label={trans.__('SSH host alias, typed')}
          data-testid="sshpyk-host-input"
          value={value}
          disabled={props.disabled || props.readonly}
          onChange={event => props.onChange(event.target.value || undefined)}
        />
      )}
      {error && (
        <div className="jp-sshpyk-FieldNote" role="status">
          {trans.__(
            'Could not list the hosts of %1: %2',
            data?.ssh_config ?? sshConfig ?? trans.__('the ssh config'),
            error
          )}
        </div>
      )}
      {!error && data && (
        <div className="jp-sshpyk-FieldNote">
          {trans._n(
            '%1 host in %2',
            '%1 hosts in %2',
            hosts.length,
            data.ssh_config
          )}
        </div>
      )}
    </div>
  );
}

/**
 * The remote kernel: one of the kernelspecs discovered on the host once host
 * and prefix are known, or typed.
 */
export function RemoteKernelWidget(props: WidgetProps): JSX.Element {
  const ctx = props.formContext as IFormContext;
  const { trans } = ctx;
  const alias = text(ctx.formData.ssh_host_alias);
  const prefix = text(ctx.formData.remote_python_prefix);
  const sshConfig = text(ctx.formData.ssh_config) || null;
  const value = text(props.value);
  const [typing, setTyping] = React.useState(false);
  // Discovery opens an ssh connection: only once the prefix looks complete.
  const ready = alias !== '' && /^(~|\/)/.test(prefix);
  const { data, error, loading } = useDebounced(
    ready
      ? () => ctx.model.discoverKernelspecs(alias, prefix, sshConfig)
      : null,
    [alias, prefix, sshConfig],
    700
  );
  const specs = (data?.kernelspecs ?? []).filter(s => !s.error);
  const known = specs.some(s => s.name === value);
  const showInput =
    typing || (value !== '' && !known && !loading) || error !== null;

  const choose = (spec: IRemoteKernelspec | undefined, name: string) => {
    props.onChange(name || undefined);
    if (spec) {
      ctx.fillEmpty({
        language: spec.language,
        display_name: trans.__(
          '%1 (SSH %2)',
          spec.display_name ?? spec.name,
          alias
        ),
        kernel_name: suggestKernelName(alias, spec.name)
      });
    }
  };

  let note: string;
  if (!ready) {
    note = trans.__(
      'Choose the host and enter the remote Python prefix to list its kernels.'
    );
  } else if (loading) {
    note = trans.__('Looking for kernels in %1 on %2…', prefix, alias);
  } else if (error) {
    note = trans.__('Could not list the kernels: %1', error);
  } else {
    note = trans._n(
      '%1 kernel found in %2 on %3',
      '%1 kernels found in %2 on %3',
      specs.length,
      prefix,
      alias
    );
  }

  return (
    <div className="jp-sshpyk-Combo">
      <select
        id={props.id}
        className="jp-mod-styled"
        data-testid="sshpyk-remote-kernel-select"
        value={showInput ? OTHER : value}
        disabled={props.disabled || props.readonly}
        aria-describedby={`${props.id}__description`}
        aria-busy={loading}
        onChange={event => {
          const choice = event.target.value;
          setTyping(choice === OTHER);
          if (choice !== OTHER) {
            choose(
              specs.find(s => s.name === choice),
              choice
            );
          }
        }}
      >
        <option value="">
          {loading
            ? trans.__('Looking for kernels…')
            : trans.__('Choose a remote kernel')}
        </option>
        {specs.map(s => (
          <option key={s.name} value={s.name}>
            {s.display_name ? `${s.display_name} (${s.name})` : s.name}
          </option>
        ))}
        <option value={OTHER}>
          {trans.__('Another kernel (type its name)…')}
        </option>
      </select>
      {showInput && (
        <input
          type="text"
          className="jp-mod-styled"
          aria-label={trans.__('Remote kernel name, typed')}
          data-testid="sshpyk-remote-kernel-input"
          value={value}
          disabled={props.disabled || props.readonly}
          onChange={event => props.onChange(event.target.value || undefined)}
        />
      )}
      <div
        className={`jp-sshpyk-FieldNote${error ? ' jp-sshpyk-FieldNote-error' : ''}`}
        role="status"
        data-testid="sshpyk-discovery-note"
      >
        {note}
      </div>
    </div>
  );
}

export const FORM_WIDGETS = {
  hostAlias: HostAliasWidget,
  remoteKernel: RemoteKernelWidget
};
