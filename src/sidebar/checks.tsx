import { nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import * as React from 'react';

import { ICheck } from '../api';
import { CheckRun, CheckRunState } from '../checks';

/**
 * The badge of one check.
 */
function statusWord(
  status: ICheck['status'],
  trans: TranslationBundle
): string {
  switch (status) {
    case 'ok':
      return trans.__('ok');
    case 'warn':
      return trans.__('warning');
    case 'fail':
      return trans.__('failed');
    case 'skipped':
      return trans.__('skipped');
  }
  return status;
}

/**
 * The summary of a run.
 */
export function runWords(
  state: CheckRunState,
  trans: TranslationBundle = nullTranslator.load('sshpyk')
): string {
  switch (state) {
    case 'running':
      return trans.__('Checking…');
    case 'ok':
      return trans.__('All checks passed');
    case 'warning':
      return trans.__('Passed with warnings');
    case 'failed':
      return trans.__('Some checks failed');
    case 'error':
      return trans.__('The check could not run');
  }
  return state;
}

/**
 * The checks of one run, each shown as soon as the server reports it.
 */
export function CheckResults(props: {
  run: CheckRun;
  trans?: TranslationBundle;
}): JSX.Element {
  const { run } = props;
  const trans = props.trans ?? nullTranslator.load('sshpyk');
  return (
    <div className="jp-sshpyk-Checks" data-testid="sshpyk-checks">
      <ul className="jp-sshpyk-Checks-list" aria-live="polite">
        {run.checks.map(check => (
          <li
            key={check.id}
            className={`jp-sshpyk-Check jp-sshpyk-Check-${check.status}`}
            data-testid={`sshpyk-check-${check.id}`}
            data-status={check.status}
          >
            <span className="jp-sshpyk-Check-badge">
              {statusWord(check.status, trans)}
            </span>
            <span className="jp-sshpyk-Check-title">{check.title}</span>
            {check.value && (
              <span className="jp-sshpyk-Check-value">{check.value}</span>
            )}
            {check.hint && check.status !== 'ok' && (
              <div className="jp-sshpyk-Check-hint">{check.hint}</div>
            )}
          </li>
        ))}
        {run.state === 'running' && (
          <li
            className="jp-sshpyk-Check jp-sshpyk-Check-running"
            data-status="running"
          >
            <span className="jp-sshpyk-Check-badge">{trans.__('running')}</span>
            <span className="jp-sshpyk-Check-title">
              {run.checks.length
                ? trans.__('Next checks…')
                : trans.__('Connecting…')}
            </span>
          </li>
        )}
      </ul>
      <div
        className={`jp-sshpyk-Checks-summary jp-sshpyk-Run-${run.state}`}
        data-testid="sshpyk-check-summary"
        data-state={run.state}
        role="status"
      >
        {run.error
          ? trans.__('%1: %2', runWords('error', trans), run.error)
          : runWords(run.state, trans)}
      </div>
    </div>
  );
}
