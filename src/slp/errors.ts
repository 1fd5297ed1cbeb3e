/** Coded errors about SLEAP labels files. Each names the file and says what to do. */
import { SleapRtcError } from '../errors.js';

export class SlpError extends SleapRtcError {}

export function notHdf5(path: string, reason: string | undefined): SlpError {
  const why = reason ? ` (HDF5 says: ${reason})` : '';
  return new SlpError(
    'SLP_NOT_HDF5',
    `${path} is not a SLEAP labels file: it could not be opened as HDF5${why}; check that it is the .slp file SLEAP saved and that it was copied whole`,
    { path, ...(reason ? { reason } : {}) },
  );
}

export function noVideosTable(path: string): SlpError {
  return new SlpError(
    'SLP_NO_VIDEOS_TABLE',
    `${path} is an HDF5 file but not a SLEAP labels file: it has no videos_json dataset; pass the .slp file SLEAP saved (or a .pkg.slp package)`,
    { path },
  );
}

export function videosInvalid(path: string, problem: string, index?: number): SlpError {
  const where = index === undefined ? 'videos_json' : `videos_json[${index}]`;
  return new SlpError(
    'SLP_VIDEOS_INVALID',
    `${path}: ${where} ${problem}; the file is damaged or was not written by SLEAP (re-save it from SLEAP)`,
    { path, ...(index === undefined ? {} : { index }), problem },
  );
}
