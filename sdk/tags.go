package sdk

import (
	"context"
	"fmt"
	"net/http"
)

type tagsBody struct {
	Tags []string `json:"tags"`
}

// SetTags replaces the tags of a message (PUT /messages/{id}/tags); no
// tags clears them. It returns the message's tags. Tags are 1–100
// letters, digits, spaces and - . _ @; others are refused (400).
func (c *Client) SetTags(ctx context.Context, id string, tags ...string) ([]string, error) {
	return c.editTags(ctx, http.MethodPut, id, tags, "set tags of")
}

// AddTags adds tags to a message (POST /messages/{id}/tags) and returns
// its tags.
func (c *Client) AddTags(ctx context.Context, id string, tags ...string) ([]string, error) {
	return c.editTags(ctx, http.MethodPost, id, tags, "add tags to")
}

// RemoveTag removes one tag, in any case, from a message
// (DELETE /messages/{id}/tags/{tag}) and returns its tags.
func (c *Client) RemoveTag(ctx context.Context, id, tag string) ([]string, error) {
	var out tagsBody
	err := c.doJSON(ctx, request{
		method: http.MethodDelete, path: "/messages/" + esc(id) + "/tags/" + esc(tag),
		context: fmt.Sprintf("remove tag %q from message %q", tag, id),
	}, &out)
	return out.Tags, err
}

func (c *Client) editTags(ctx context.Context, method, id string, tags []string, what string) ([]string, error) {
	if tags == nil {
		tags = []string{}
	}
	body, err := jsonBody(tagsBody{Tags: tags})
	if err != nil {
		return nil, err
	}
	var out tagsBody
	err = c.doJSON(ctx, request{
		method: method, path: "/messages/" + esc(id) + "/tags", body: body, contentType: "application/json",
		context: fmt.Sprintf("%s message %q", what, id),
	}, &out)
	return out.Tags, err
}
