#include <stdio.h>
int
main(void)
{
  fputs("reaper: under construction\n", stderr);
  return 1;
}
