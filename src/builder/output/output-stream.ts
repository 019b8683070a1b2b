/** Which of a process's output streams a line came from. */
export type OutputStream = 'stdout' | 'stderr';
