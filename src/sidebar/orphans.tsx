import { Dialog, showDialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { UseSignal } from '@jupyterlab/ui-components';
import * as React from 'react';

import { IOrphan } from '../api';
import { IOrphanOutcome, ISshpykModel } from '../tokens';

export interface IOrphansProps {
  model: ISshpykModel;
  trans: TranslationBundle;
  /**
   * Open a console on a kernel this server just took up again.
   */
  onOpenConsole?: (kernelId: string) => void;
}

/**
 * How long an orphan still has before its lease ends it, in words.
 */
export function leaseWords(orphan: IOrphan, trans: TranslationBundle): string {
  if (!orphan.reachable) {
    return trans.__('host unreachable: %1', orphan.error ?? '');
  }
  if (orphan.elsewhere) {
    // a home directory shared by several hosts (HPC login nodes): not ours
    return trans.__(
      'runs on another host (%1) that shares your home directory',
      orphan.on_host ?? '?'
    );
  }
  if (orphan.attached) {
    return trans.__('in use by another Jupyter server');
  }
  const lease = orphan.config?.lease_timeout ?? 3600;
  const left = Math.max(0, lease - (orphan.lease_age ?? 0));
  return left >= 120
    ? trans.__('ends by itself in %1 min', Math.round(left / 60))
    : trans.__('ends by itself in %1 s', Math.round(left));
}

/**
 * What the last action on an orphan came to, in words.
 */
export function outcomeWords(
  outcome: IOrphanOutcome,
  trans: TranslationBundle
): string {
  const name = outcome.orphan.display_name;
  if (outcome.error === null) {
    return outcome.action === 'attach'
      ? trans.__(
          '%1 runs in this server again; pick it under Kernel › Change Kernel.',
          name
        )
      : '';
  }
  return outcome.action === 'attach'
    ? trans.__('Could not re-attach %1: %2', name, outcome.error)
    : trans.__('Could not shut down %1: %2', name, outcome.error);
}

/**
 * SSH kernels left running by a Jupyter server that is gone: re-attach them
 * (their state is intact) or shut them down. Hidden when there are none.
 * The model lists them (`refreshOrphans`) and acts on them; this only asks
 * before shutting one down.
 */
export function Orphans(props: IOrphansProps): JSX.Element | null {
  return (
    <UseSignal signal={props.model.orphansChanged}>
      {() => <OrphansView {...props} />}
    </UseSignal>
  );
}

function OrphansView(props: IOrphansProps): JSX.Element | null {
  const { model, trans } = props;
  const orphans = model.orphans;
  const busy = model.orphanBusy;
  const outcome = model.orphanOutcome;
  const outcomeText = outcome ? outcomeWords(outcome, trans) : '';
  const attached =
    outcome?.action === 'attach' && outcome.error === null
      ? outcome.orphan.kernel_id
      : null;
  const listError = model.orphansError
    ? trans.__('Could not list kernels left running: %1', model.orphansError)
    : '';
  const message = [outcomeText, listError].filter(Boolean).join(' ') || null;

  const shutDown = async (orphan: IOrphan) => {
    const answer = await showDialog({
      title: trans.__('Shut the kernel down?'),
      body: trans.__(
        'This ends %1 on %2; what it holds in memory is lost.',
        orphan.display_name,
        orphan.host_alias
      ),
      buttons: [
        Dialog.cancelButton(),
        Dialog.warnButton({ label: trans.__('Shut Down') })
      ]
    });
    if (answer.button.accept) {
      await model.shutDownOrphan(orphan);
    }
  };

  if (orphans.length === 0 && message === null) {
    return null;
  }
  return (
    <section className="jp-sshpyk-Orphans" data-testid="sshpyk-orphans">
      <div className="jp-sshpyk-Orphans-header">
        <h3 className="jp-sshpyk-Orphans-heading">
          {trans.__('Left running')}
        </h3>
        <button
          className="jp-mod-styled"
          onClick={() => void model.refreshOrphans()}
          title={trans.__('Ask the hosts again')}
        >
          {trans.__('Refresh')}
        </button>
      </div>
      {message && (
        <p className="jp-sshpyk-Muted" role="status">
          {message}{' '}
          {attached && props.onOpenConsole && (
            <button
              className="jp-mod-styled jp-mod-accept"
              onClick={() => props.onOpenConsole?.(attached)}
            >
              {trans.__('Open a Console')}
            </button>
          )}
        </p>
      )}
      <ul className="jp-sshpyk-Orphans-list">
        {orphans.map(o => (
          <li
            key={o.kernel_id}
            className="jp-sshpyk-Orphan"
            data-testid={`sshpyk-orphan-${o.kernel_id}`}
          >
            <div className="jp-sshpyk-Kernel-name">{o.display_name}</div>
            <div className="jp-sshpyk-Muted">
              {trans.__(
                '%1 · started %2',
                o.host_alias,
                new Date(o.started_at * 1000).toLocaleString()
              )}
            </div>
            <div className="jp-sshpyk-Muted">{leaseWords(o, trans)}</div>
            <div className="jp-sshpyk-Kernel-actions">
              <button
                className="jp-mod-styled jp-mod-accept"
                disabled={
                  busy !== null || o.attached || o.elsewhere || !o.reachable
                }
                onClick={() => void model.attachOrphan(o)}
              >
                {busy === o.kernel_id
                  ? trans.__('Working…')
                  : trans.__('Re-attach')}
              </button>
              <button
                className="jp-mod-styled jp-mod-warn"
                disabled={busy !== null || o.elsewhere || !o.reachable}
                onClick={() => void shutDown(o)}
              >
                {trans.__('Shut Down')}
              </button>
            </div>
          </li>
        ))}
      </ul>
    </section>
  );
}
