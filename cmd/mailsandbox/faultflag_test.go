package main

import (
	"strings"
	"testing"
)

func TestFaultFlags(t *testing.T) {
	rf, err := parseRun([]string{"--fault", "rcpt,to=*@bounce.test=550 5.1.1 No such user", "--fault", "mail=delay:1s",
		"--smtp-log-sessions", "50", "--chaos-triggers", "Sender:451:10"},
		mapEnv(map[string]string{"MAILSANDBOX_ENABLE_CHAOS": "true"}))
	if err != nil {
		t.Fatal(err)
	}
	f := rf.cfg.Faults
	if len(f.Rules) != 2 || f.Rules[0] != "rcpt,to=*@bounce.test=550 5.1.1 No such user" || f.SMTPLogSessions != 50 ||
		!f.EnableChaos || f.ChaosTriggers != "Sender:451:10" {
		t.Fatalf("%+v", f)
	}
	rf, err = parseRun(nil, mapEnv(map[string]string{"MAILSANDBOX_FAULT": "rcpt=greylist:30s\nconnect,p=0.1=disconnect"}))
	if err != nil || len(rf.cfg.Faults.Rules) != 2 || rf.cfg.Faults.SMTPLogSessions != 1000 {
		t.Fatalf("%+v %v", rf.cfg.Faults, err)
	}
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--fault", "quit=disconnect"}, "--fault"},
		{[]string{"--fault", "rcpt=700 nope"}, "--fault"},
		{[]string{"--fault", "rcpt=delay:-3s"}, "--fault"},
		{[]string{"--fault", "rcpt,to=[x=disconnect"}, "--fault"},
		{[]string{"--smtp-log-sessions", "-1"}, "--smtp-log-sessions"},
		{[]string{"--chaos-triggers", "Sender:200:5"}, "--chaos-triggers"},
	} {
		_, err := parseRun(c.args, mapEnv(nil))
		if err == nil || !strings.HasPrefix(err.Error(), c.flag) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line starting %s", c.args, err, c.flag)
		}
	}
}
