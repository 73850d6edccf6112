import * as React from 'react';

import { IKernelEntry } from '../api';
import { KernelsModel } from '../model';
import { TunnelStatusModel, tunnelLabel } from '../status';
import { CheckResults, runWords } from './checks';

export interface IKernelListProps {
  model: KernelsModel;
  status: TunnelStatusModel;
  onEdit: (entry: IKernelEntry) => void;
  onDelete: (entry: IKernelEntry) => void;
}

function Running(props: {
  status: TunnelStatusModel;
  name: string;
}): JSX.Element {
  const running = props.status.byKernelspec(props.name);
  if (running.length === 0) {
    return <span className="jp-sshpyk-Muted">not running</span>;
  }
  return (
    <span data-testid="sshpyk-running">
      {running
        .map(k => {
          const rtt = k.rtt_ms !== null ? `, ${k.rtt_ms} ms` : '';
          return `running: ${tunnelLabel(k.state, k.step)}${rtt}`;
        })
        .join('; ')}
    </span>
  );
}

function KernelItem(
  props: IKernelListProps & { entry: IKernelEntry }
): JSX.Element {
  const { entry, model, status } = props;
  const config = entry.config;
  const run = model.checkRun(entry.name);
  const selected = model.selected === entry.name;
  const ref = React.useRef<HTMLLIElement>(null);

  React.useEffect(() => {
    if (selected) {
      ref.current?.scrollIntoView({ block: 'nearest' });
    }
  }, [selected]);

  let lastCheck = 'not checked yet';
  if (run) {
    lastCheck =
      run.state === 'running'
        ? 'checking…'
        : `${runWords(run.state).toLowerCase()} at ${run.finishedAt?.toLocaleTimeString()}`;
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
          {`Invalid kernelspec: ${entry.error.message}`}
        </p>
      )}
      <dl className="jp-sshpyk-Kernel-facts">
        <dt>Name</dt>
        <dd>{entry.name}</dd>
        {config && (
          <>
            <dt>Host</dt>
            <dd data-testid="sshpyk-kernel-host">{config.ssh_host_alias}</dd>
            <dt>Remote kernel</dt>
            <dd>{`${config.remote_kernel_name} in ${config.remote_python_prefix}`}</dd>
          </>
        )}
        <dt>Last check</dt>
        <dd data-testid="sshpyk-kernel-last-check">{lastCheck}</dd>
        <dt>Kernel</dt>
        <dd>
          <Running status={status} name={entry.name} />
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
          Check
        </button>
        <button
          className="jp-mod-styled"
          disabled={!config}
          onClick={() => props.onEdit(entry)}
        >
          Edit
        </button>
        <button
          className="jp-mod-styled jp-mod-warn"
          onClick={() => props.onDelete(entry)}
        >
          Delete
        </button>
      </div>
      {run && <CheckResults run={run} />}
    </li>
  );
}

/**
 * The SSH kernels, one card each.
 */
export function KernelList(props: IKernelListProps): JSX.Element {
  const kernels = props.model.kernels ?? [];
  return (
    <ul className="jp-sshpyk-KernelList" aria-label="SSH kernels">
      {kernels.map(entry => (
        <KernelItem key={entry.name} {...props} entry={entry} />
      ))}
    </ul>
  );
}
