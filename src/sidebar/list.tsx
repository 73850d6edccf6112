import { TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { IKernelspecEntry, ITunnelStatus } from '../api';
import { kernelLabel } from '../slurm/words';
import { ISshpykModel } from '../tokens';
import { CheckResults, runWords } from './checks';
import { SlurmJob } from './slurm';

export interface IKernelspecListProps {
  model: ISshpykModel;
  onEdit: (entry: IKernelspecEntry) => void;
  onDelete: (entry: IKernelspecEntry) => void;
  onLogin?: (alias: string, sshConfig: string | null) => void;
  trans: TranslationBundle;
}

/**
 * One running kernel in words: its state (a Slurm job's where it is), the
 * round trip, and the mounts that need attention.
 */
function runningWords(k: ITunnelStatus, trans: TranslationBundle): string {
  const label = kernelLabel(k, trans);
  let text: string;
  if (k.slurm && (k.state === 'launching' || k.slurm.ended)) {
    // "queued: Resources, ...", "starting on node1", why the job ended
    text = label;
  } else {
    text =
      k.rtt_ms !== null
        ? trans.__('running: %1, %2 ms', label, k.rtt_ms)
        : trans.__('running: %1', label);
  }
  // only mounts needing attention: "mounted" is the expected, quiet case
  const troubled = (k.mounts ?? []).filter(m => m.state !== 'mounted');
  return troubled.length === 0
    ? text
    : [
        text,
        ...troubled.map(m =>
          m.error
            ? trans.__('mount %1: %2 (%3)', m.remote_path, m.state, m.error)
            : trans.__('mount %1: %2', m.remote_path, m.state)
        )
      ].join(', ');
}

function Running(props: {
  model: ISshpykModel;
  name: string;
  trans: TranslationBundle;
}): JSX.Element {
  const { model, trans } = props;
  const running = model.tunnelsOfKernelspec(props.name);
  if (running.length === 0) {
    return <span className="jp-sshpyk-Muted">{trans.__('not running')}</span>;
  }
  return (
    <span data-testid="sshpyk-running">
      {running.map((k, i) => (
        <React.Fragment key={k.kernel_id}>
          {i > 0 && '; '}
          {runningWords(k, trans)}
          {k.slurm && <SlurmJob model={model} tunnel={k} trans={trans} />}
        </React.Fragment>
      ))}
    </span>
  );
}

function KernelspecItem(
  props: IKernelspecListProps & { entry: IKernelspecEntry }
): JSX.Element {
  const { entry, model, trans } = props;
  const config = entry.config;
  const run = model.checkRun(entry.name);
  const selected = model.selected === entry.name;
  const ref = React.useRef<HTMLLIElement>(null);

  React.useEffect(() => {
    if (selected) {
      ref.current?.scrollIntoView({ block: 'nearest' });
    }
  }, [selected]);

  let lastCheck = trans.__('not checked yet');
  if (run) {
    lastCheck =
      run.state === 'running'
        ? trans.__('checking…')
        : trans.__(
            '%1 at %2',
            runWords(run.state, trans).toLowerCase(),
            run.finishedAt?.toLocaleTimeString() ?? ''
          );
  }

  return (
    <li
      ref={ref}
      className={`jp-sshpyk-Kernel${selected ? ' jp-mod-selected' : ''}`}
      data-testid={`sshpyk-kernel-${entry.name}`}
      aria-current={selected ? 'true' : undefined}
      onClick={() => (model.selected = entry.name)}
    >
      <div className="jp-sshpyk-Kernel-name">
        {config?.display_name ?? entry.name}
      </div>
      {entry.error && (
        <p className="jp-sshpyk-Error" role="alert">
          {trans.__('Invalid kernelspec: %1', entry.error.message)}
        </p>
      )}
      <dl className="jp-sshpyk-Kernel-facts">
        <dt>{trans.__('Name')}</dt>
        <dd>{entry.name}</dd>
        {config && (
          <>
            <dt>{trans.__('Host')}</dt>
            <dd data-testid="sshpyk-kernel-host">{config.ssh_host_alias}</dd>
            <dt>{trans.__('Remote kernel')}</dt>
            <dd>
              {trans.__(
                '%1 in %2',
                config.remote_kernel_name,
                config.remote_python_prefix
              )}
            </dd>
          </>
        )}
        <dt>{trans.__('Last check')}</dt>
        <dd data-testid="sshpyk-kernel-last-check">{lastCheck}</dd>
        <dt>{trans.__('Kernel')}</dt>
        <dd>
          <Running model={model} name={entry.name} trans={trans} />
        </dd>
      </dl>
      <div className="jp-sshpyk-Kernel-actions">
        <button
          className="jp-mod-styled jp-mod-accept"
          disabled={!config || run?.state === 'running'}
          onClick={() => {
            model.selected = entry.name;
            model.check(entry.name);
          }}
        >
          {trans.__('Check')}
        </button>
        <button
          className="jp-mod-styled"
          disabled={!config}
          onClick={() => props.onEdit(entry)}
        >
          {trans.__('Edit')}
        </button>
        <button
          className="jp-mod-styled jp-mod-warn"
          onClick={() => props.onDelete(entry)}
        >
          {trans.__('Delete')}
        </button>
        {config &&
          props.onLogin &&
          model
            .tunnelsOfKernelspec(entry.name)
            .some(k => k.state === 'login_needed') && (
            <button
              className="jp-mod-styled jp-mod-accept"
              data-testid="sshpyk-login-again"
              title={trans.__(
                'The login to %1 ended: log in again, and its kernels reconnect',
                config.ssh_host_alias
              )}
              onClick={() =>
                props.onLogin?.(
                  config.ssh_host_alias,
                  config.ssh_config ?? null
                )
              }
            >
              {trans.__('Log In')}
            </button>
          )}
      </div>
      {run && <CheckResults run={run} trans={trans} />}
    </li>
  );
}

/**
 * The SSH kernelspecs, one card each.
 */
export function KernelspecList(props: IKernelspecListProps): JSX.Element {
  const kernelspecs = props.model.kernelspecs ?? [];
  return (
    <ul
      className="jp-sshpyk-KernelList"
      aria-label={props.trans.__('SSH kernels')}
    >
      {kernelspecs.map(entry => (
        <KernelspecItem key={entry.name} {...props} entry={entry} />
      ))}
    </ul>
  );
}
