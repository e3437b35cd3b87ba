/** A credential stage whose material comes from files that reload without a restart. */
import type { Stage } from './stage.ts';
import type { ReloadResult, ReloadTrigger } from '../reload/source.ts';

export interface CredentialStage extends Stage {
  /** Reloads this stage's file-backed material now (e.g. on SIGHUP); never throws. */
  reload(trigger: ReloadTrigger): ReloadResult[];
  /** Stops watching files and the timers. */
  close(): void;
}
