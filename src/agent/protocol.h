/* The guest agent's wire protocol (cloison-agent in the VM initramfs, and
   src/manager/vm_agent.c on the host), over one AF_VSOCK stream
   connection per command to CL_AGENT_PORT.

   Every message is a frame: 1 byte type, 4 bytes payload length (big
   endian), then the payload (at most CL_AGENT_MAX_FRAME bytes).

   Host -> guest (the request):
     'A' one argument of the command (argv[0] first), at least one
     'E' one KEY=VALUE of the environment (none: PATH=CL_AGENT_DEFAULT_PATH)
     'R' run (empty payload); nothing else is read after it
   Guest -> host (the replies):
     'O' bytes the command wrote on stdout
     'E' bytes the command wrote on stderr
     'X' the exit status: 4 bytes big endian, 0..255 (128+N for signal N),
         the last frame.
   The command's stdin is empty.  When the host closes the connection
   before 'X', the agent kills the command's process group.  The host
   treats every reply as untrusted: bounded lengths, known types only. */
#ifndef CLOISON_AGENT_PROTOCOL_H
#define CLOISON_AGENT_PROTOCOL_H

#define CL_AGENT_PORT 1024u
#define CL_AGENT_MAX_FRAME 65536u
#define CL_AGENT_MAX_ARGS 4096u /* 'A' + 'E' frames in one request */
#define CL_AGENT_HEADER 5u

#define CL_AGENT_ARG 'A'
#define CL_AGENT_ENV 'E'
#define CL_AGENT_RUN 'R'
#define CL_AGENT_STDOUT 'O'
#define CL_AGENT_STDERR 'E'
#define CL_AGENT_EXIT 'X'

#define CL_AGENT_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#endif
